"""The main job (`make demo`): the musician's flow on the shipped starter drum model.

No training needed: ``drums_starter`` is a bundle the audio plugin ships (trained by this
project's own command, see README). The demo writes, under outputs/demo/<date>_<time>/:

  generated/    2 new one-shots per drum class (WAV + spectrogram PNG), grid.png, grid.wav
  variations/   8 variations of the bundled example kick (strength 0.3) and the source
  kick_to_snare/        4 kick -> snare conversions (SDEdit, strength 0.6)
  kick_to_snare_invert/ 1 conversion from the DDIM-inverted kick (keeps timing and envelope)
  evaluation/   class accuracy, Frechet distance, vary and convert scores (evaluation.json)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from diffusionkit.cli import quiet_libraries, run_command

EXAMPLES = Path(__file__).resolve().parents[1] / "plugins/diffusionkit-audio/diffusionkit_audio/examples"
MODEL = "drums_starter"


def step(title: str, command: str, overrides: list[str]) -> None:
    started = time.time()
    print(f"\n[demo] {title}: diffusionkit {command} {' '.join(overrides)}")
    run_command(command, overrides)
    print(f"[demo] ({time.time() - started:.0f} s)")


def main() -> int:
    quiet_libraries()
    root = Path("outputs/demo") / time.strftime("%Y-%m-%d_%H-%M-%S")
    kick = EXAMPLES / "kick.wav"
    started = time.time()
    step("new one-shots, 2 per class", "generate", [f"ckpt={MODEL}", "n=16", f"out={root / 'generated'}"])
    step("8 variations of the example kick", "vary",
         [f"ckpt={MODEL}", f"input={kick}", "n=8", "strength=0.3", f"out={root / 'variations'}"])
    step("kick -> snare", "convert",
         [f"ckpt={MODEL}", f"input={kick}", "target=snare", "strength=0.6", "n=4", f"out={root / 'kick_to_snare'}"])
    step("kick -> snare from the inverted kick", "convert",
         [f"ckpt={MODEL}", f"input={kick}", "target=snare", "strength=0.7", "method=invert",
          f"out={root / 'kick_to_snare_invert'}"])
    step("how good is it", "evaluate",
         [f"ckpt={MODEL}", "n_per_class=12", "vary.strengths=[0.3]", "vary.sources_per_class=3", "vary.n=4",
          "convert.pairs=[[kick,snare]]", "convert.strengths=[0.6]", "convert.sources=12",
          f"out={root / 'evaluation'}"])
    report = json.loads((root / "evaluation" / "evaluation.json").read_text())
    print(f"\n[demo] done in {time.time() - started:.0f} s; generated drums recognised: "
          f"{report['generated_accuracy']:.0%} (self-judged: the judge learned the same synthetic drums; "
          f"on real kits see README, Real drums). Listen to the WAV files under {root}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
