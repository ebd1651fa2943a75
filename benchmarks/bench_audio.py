"""The audio modality on this CPU: what each codec keeps of real-world-like sound, and how long
``vary`` takes with a drum model.

    python benchmarks/bench_audio.py [--ckpt drums_starter] [--runs 5] [--repeats 3] [--threads N] [--skip-codecs]

Prints two markdown tables:

(a) codecs: for ``modality.codec=mel`` (each decoder) and ``stft`` on four kinds of material
    written as 44.1 kHz stereo 24-bit WAV files and read through the modality (mixed to mono, resampled to 16 kHz,
    peak-normalised, as ``diffusionkit vary`` reads an input): a snare hit, a saw melody phrase,
    a kick + snare + melody mix with a reverb tail (convolution with decaying noise) and
    broadband noise 45 dB down, and pink noise. Waveform SNR (dB), log-spectral distance (dB,
    :meth:`AudioModality._log_spectral_distance`), encode and decode time per clip (median of
    ``--runs`` after a warm-up call) and the model-space size.
(b) vary: ``diffusionkit vary`` of the bundled example kick as the command does it: 8 variations,
    20 DPM-Solver++ (dpmpp_2m) steps with the command's spacing, strength 0.3, label=auto (the
    class the model recognises in the kick, inferred once per run and timed with it), decoding
    to waveforms included; one warm-up, then the median of ``--repeats`` runs, in seconds per
    variation. For reference, 8 new clips at strength 1.0 (``diffusionkit generate``: every class
    in turn, guidance 2.0, the same sampler and steps).

It runs on the allocator the ``diffusionkit`` command preloads (``DIFFUSIONKIT_ALLOCATOR=system``
measures glibc's). ``--ckpt`` takes a bundle path or a shipped bundle name (default ``drums_starter``). Nothing is
written into the repository (the material goes to a temporary folder).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Callable

if __name__ == "__main__":  # on the allocator the diffusionkit command runs on, before anything heavy is imported
    from diffusionkit.allocator import relaunch_with_allocator

    relaunch_with_allocator([sys.executable, *sys.orig_argv[1:]])

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402
from diffusionkit_audio.material import FILE_RATE, KINDS, real_world_like  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "plugins/diffusionkit-audio/diffusionkit_audio/examples"


# --- timing ---------------------------------------------------------------------------------


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``runs`` calls after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def codec_rows(runs: int, folder: Path) -> list[tuple]:
    from diffusionkit_audio.codecs import snr_db
    from diffusionkit_audio.modality import AudioModality

    paths = {}
    for kind in KINDS:
        paths[kind] = folder / f"{kind}.wav"
        sf.write(paths[kind], real_world_like(kind).T, FILE_RATE, subtype="PCM_24")
    rows = []
    for codec, options in (("mel", {"decoder": "griffin_lim"}), ("mel", {"decoder": "pghi"}), ("stft", {})):
        modality = AudioModality(codec=codec, codec_options=options)
        name = f"{codec} ({options['decoder']})" if options else codec
        size = "x".join(map(str, modality.shape))
        values = int(np.prod(modality.shape))
        for kind in KINDS:
            reference = modality.load_wave(paths[kind])
            x = modality.encode_wave(reference)
            torch.manual_seed(0)  # Griffin-Lim starts from random phases
            decoded = modality.decode(x)
            ref, est = torch.from_numpy(reference), torch.from_numpy(decoded)
            encode = median_seconds(lambda: modality.encode_wave(reference), runs)
            decode = median_seconds(lambda: modality.decode(x), runs)
            rows.append((name, kind, f"{snr_db(ref, est):.1f}", f"{modality._log_spectral_distance(ref, est):.3f}",
                         f"{encode * 1e3:.1f}", f"{decode * 1e3:.1f}",
                         f"{size} ({values} values / {modality.num_samples} samples)"))
    return rows


def vary_rows(ckpt: str, repeats: int, n: int = 8, steps: int = 20) -> tuple[list[tuple], str]:
    from diffusionkit.apps.common import labels_for, repeat, sample_in_batches
    from diffusionkit.apps.edits import source_labels
    from diffusionkit.bundle import load_model
    from diffusionkit.config import compose_config

    model = load_model(ckpt)
    common = [f"ckpt={ckpt}", f"n={n}", f"steps={steps}", "sampler=dpmpp_2m"]
    vary_cfg = compose_config("vary", [*common, "strength=0.3", f"input={EXAMPLES / 'kick.wav'}"])
    generate_cfg = compose_config("generate", common)
    source = model.modality.load(vary_cfg.input)

    def vary() -> np.ndarray:
        generator = torch.Generator().manual_seed(0)
        labels = source_labels(model, source, vary_cfg.label, n)  # label=auto: the class the model hears
        samples = sample_in_batches(model, n, labels, vary_cfg, vary_cfg.batch_size, generator,
                                    init=repeat(source, n), strength=float(vary_cfg.strength))
        return model.modality.decode(samples)

    labels = labels_for(n, None, model.classes)

    def generate() -> np.ndarray:
        generator = torch.Generator().manual_seed(0)
        return model.modality.decode(sample_in_batches(model, n, labels, generate_cfg, generate_cfg.batch_size,
                                                       generator))

    spacing = vary_cfg.sampler.spacing
    rows = [
        (f"vary, strength {vary_cfg.strength}, label={vary_cfg.label} (class inference included), guidance "
         f"{vary_cfg.guidance}", f"{median_seconds(vary, repeats) / n:.3f}"),
        (f"generate, strength 1.0, guidance {generate_cfg.guidance}", f"{median_seconds(generate, repeats) / n:.3f}"),
    ]
    params = sum(p.numel() for p in model.module.net.parameters())
    shape = "x".join(map(str, model.modality.shape))
    what = (f"model {model.path} ({params / 1e6:.2f} M parameters, {shape} {model.config.modality.codec}, "
            f"{len(model.classes)} classes); {n} clips, {steps} dpmpp_2m steps, spacing {spacing}, "
            f"decoding included, median of {repeats} after a warm-up")
    return rows, what


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default="drums_starter", help="audio bundle path or shipped bundle name")
    parser.add_argument("--runs", type=int, default=5, help="timed codec calls per cell")
    parser.add_argument("--repeats", type=int, default=3, help="timed vary / generate runs")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--skip-vary", action="store_true", help="only the codec table")
    parser.add_argument("--skip-codecs", action="store_true", help="only the sampling table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusionkit.commands import quiet_libraries
    from diffusionkit.errors import UsageError

    quiet_libraries()
    if not args.skip_codecs:
        with TemporaryDirectory() as tmp:
            rows = codec_rows(args.runs, Path(tmp))
        print(f"(a) codecs: 44.1 kHz stereo 24-bit files read as 16 kHz mono clips; torch threads "
              f"{torch.get_num_threads()}; times are medians of {args.runs} calls after a warm-up")
        print_table(("codec", "material", "SNR dB", "LSD dB", "encode ms", "decode ms", "model space"), rows)
    if args.skip_vary:
        return
    try:
        rows, what = vary_rows(args.ckpt, args.repeats)
    except UsageError as err:
        raise SystemExit(f"bench_audio: no model for the sampling table ({err}); use --ckpt PATH with any audio "
                         "bundle, e.g. from a short `diffusionkit train modality=audio data=drums` run") from None
    from diffusionkit.allocator import preloaded_allocator

    print(f"\n(b) sampling: {what}; allocator {preloaded_allocator() or 'system'}")
    print_table(("measurement", "s per clip"), rows)


if __name__ == "__main__":
    main()
