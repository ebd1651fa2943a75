"""The main job (`make demo`): the musician's flow on the shipped starter drum model (v2).

No training needed: ``drums_starter`` is a bundle the audio plugin ships, trained at 44.1 kHz on
real recorded one-shots (Debian's hydrogen-drumkits, 11 kits; 3 kits held out, see README). The
demo writes, under outputs/demo/<date>_<time>/:

  generated/    2 new one-shots per drum class (WAV + spectrogram PNG), grid.png, grid.wav
  variations/   8 variations of a real kick (strength 0.3) and the source
  kick_to_snare/        4 kick -> snare conversions (SDEdit, strength 0.6)
  kick_to_snare_invert/ 1 conversion from the DDIM-inverted kick (keeps timing and envelope)
  evaluation/   graded on the kits the model never heard (evaluation.json), when they are installed

The kick is a real one from a held-out kit (ColomboAcousticDrumkit) when Debian's
hydrogen-drumkits is installed (``apt-get install hydrogen-drumkits``), else the bundled example.
With the kits, the evaluation trains judges on real recordings held out by kit and grades every
edit from real held-out one-shots; without them it prints the figures the README reports.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from diffusionkit.allocator import relaunch_with_allocator

if __name__ == "__main__":  # on the allocator the diffusionkit command runs on (tcmalloc where installed)
    relaunch_with_allocator([sys.executable, *sys.orig_argv[1:]])

from diffusionkit.commands import quiet_libraries, run_command  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "plugins/diffusionkit-audio/diffusionkit_audio/examples"
KITS = Path("/usr/share/hydrogen/data/drumkits")
HELD_OUT = ["ColomboAcousticDrumkit", "HardElectro1", "rumpf_kit_z01_h2"]
REAL_KICK = KITS / "ColomboAcousticDrumkit" / "bassdrum-4mics-br-stereo-normal3.flac"
MODEL = "drums_starter"


def step(title: str, command: str, overrides: list[str]) -> None:
    started = time.time()
    print(f"\n[demo] {title}: diffusionkit {command} {' '.join(overrides)}")
    run_command(command, overrides)
    print(f"[demo] ({time.time() - started:.0f} s)")


def evaluate(root: Path) -> None:
    """Grade on the held-out kits and print the real-data figures."""
    step("how good is it, on kits it never heard", "evaluate",
         [f"ckpt={MODEL}", "data=drumkits", "data.dataset.split=all", f"heldout_sources=[{','.join(HELD_OUT)}]",
          "n_per_class=8", "vary.strengths=[0.3]", "vary.sources_per_class=4", "vary.n=4",
          "convert.pairs=[[kick,snare]]", "convert.strengths=[0.6]", "convert.sources=8",
          f"out={root / 'evaluation'}"])
    report = json.loads((root / "evaluation" / "evaluation.json").read_text())
    vary = {row["label"]: row for row in report["vary"]}
    convert = report["convert"][0]
    print(f"\n[demo] on real one-shots from kits the model never heard (the judges, trained on real "
          f"recordings, recognise {report['grading']['judge_accuracy_on_edit_sources']:.0%} of these kits' one-shots):\n"
          f"  generated drums recognised as their class  {report['generated_accuracy']:.0%}\n"
          f"  label=auto names the true class             {report['auto_label']['accuracy']:.0%}\n"
          f"  vary 0.3, label=auto, keeps the class       {vary['auto']['true_class_kept']:.0%} "
          f"(diversity {vary['auto']['diversity']:.2f})\n"
          f"  vary 0.3, class named (label=kick...)       {vary['given']['true_class_kept']:.0%} "
          f"(diversity {vary['given']['diversity']:.2f})\n"
          f"  convert kick -> snare heard as snare        {convert['target_rate']:.0%} "
          f"(envelope correlation {convert['envelope_correlation']:.2f})")


def main() -> int:
    quiet_libraries()
    root = Path("outputs/demo") / time.strftime("%Y-%m-%d_%H-%M-%S")
    kick = REAL_KICK if REAL_KICK.is_file() else EXAMPLES / "kick.wav"
    started = time.time()
    print(f"[demo] the kick to vary and convert: {kick}")
    step("new one-shots, 2 per class", "generate", [f"ckpt={MODEL}", "n=16", f"out={root / 'generated'}"])
    step("8 variations of the kick", "vary",
         [f"ckpt={MODEL}", f"input={kick}", "n=8", "strength=0.3", f"out={root / 'variations'}"])
    step("kick -> snare", "convert",
         [f"ckpt={MODEL}", f"input={kick}", "target=snare", "strength=0.6", "n=4", f"out={root / 'kick_to_snare'}"])
    step("kick -> snare from the inverted kick", "convert",
         [f"ckpt={MODEL}", f"input={kick}", "target=snare", "strength=0.7", "method=invert",
          f"out={root / 'kick_to_snare_invert'}"])
    if KITS.is_dir():
        evaluate(root)
    else:
        print(f"\n[demo] {KITS} is absent, so no grading on real kits here (apt-get install hydrogen-drumkits); "
              f"the README's 'Real drums' table has the figures measured on the held-out kits.")
    print(f"\n[demo] done in {time.time() - started:.0f} s. Listen to the WAV files under {root}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
