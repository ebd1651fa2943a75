"""What each audio codec keeps of real drums at 44.1 kHz: the held-out kits of ``data=drumkits`` (or every kit).

    python benchmarks/bench_audio_codecs.py [--root /usr/share/hydrogen/data/drumkits] [--threads 1]
                                            [--limit N] [--no-ablation] [--split test|all]

The material is the ``split=test`` one-shots of ``DrumKitsDataset`` (the 3 held-out kits: 49
clips of Debian's hydrogen-drumkits; ``--split all``: every kit's), prepared at 44.1 kHz as
training prepares them (onset, loudness). Each route encodes and decodes every clip; a 16 kHz route hears the clip resampled to
16 kHz (soxr) and its output is resampled back, so that band-limiting shows as loss. Every
figure compares the decoded clip with the original 44.1 kHz clip over the full band:

* LSD: log-spectral distance, dB (RMS over bins and frames of the log power difference; STFT
  2048 / hop 512; both spectra floored 80 dB below the original's largest bin), mean over clips;
* MR-STFT SC / log-mag: multi-resolution STFT distance over FFT sizes 512, 1024, 2048 (hop a
  quarter): spectral convergence and mean |ln| magnitude difference| (same floor), mean over clips;
* HF energy: the fraction of energy above 8 kHz in the decoded clips over that of the originals
  (1.0 = all kept; all clips pooled);
* re-encode RMSE: model-space RMSE between an item and the encoding of its decoded waveform (how
  faithfully a decoder renders what a model writes, with no original to compare: 0 = exact);
* encode / decode ms: median per 1 s clip over the clips, one clip per call, after a warm-up call;
  the routes take turns clip by clip (so a busy machine slows them alike).

A second table asks what the 44.1 kHz routes keep of what the captions say (``cond=text``): the
Spearman rank correlation, over the clips of each class, between a descriptor measured on the
original and on its round trip (``diffusionkit_audio.captions.descriptors``: decay, spectral
centroid, fundamental, crest factor). A model trained in a route's space cannot learn a caption
word whose descriptor the route does not keep.

Routes: the mel codec at 16 kHz (64 bands, today's starter) and at 44.1 kHz (96 bands, n_fft
2048, hop 690: starter v2's model space) with each decoder (``codec_options.decoder``), the same
on the htk mel scale (``codec_options.mel_scale=htk``: narrower low bands), and the
exact stft codec at 44.1 kHz for reference. The ablation table (``--no-ablation`` skips it) takes
the pghi decoder apart on the 44.1 kHz mel: magnitude estimate, decoding hop, initial phase and
Fast Griffin-Lim iterations. Nothing is written.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402

RATE = 44100
MEL_44K = {"n_fft": 2048, "hop_length": 690, "n_mels": 96}  # starter v2 (experiment=drums_real)

#: (route name, sample rate, codec, codec options).
ROUTES = [
    ("mel 64 @ 16 kHz + Griffin-Lim (today's starter)", 16000, "mel", {"decoder": "griffin_lim"}),
    ("mel 64 @ 16 kHz + pghi", 16000, "mel", {"decoder": "pghi"}),
    ("mel 96 @ 44.1 kHz + Griffin-Lim", RATE, "mel", {**MEL_44K, "decoder": "griffin_lim"}),
    ("mel 96 @ 44.1 kHz + pghi (default)", RATE, "mel", {**MEL_44K, "decoder": "pghi"}),
    ("mel 96 @ 44.1 kHz + pghi, 8 iterations", RATE, "mel", {**MEL_44K, "decoder": "pghi", "griffin_lim_iters": 8}),
    ("mel 96 @ 44.1 kHz, htk bands + pghi", RATE, "mel", {**MEL_44K, "mel_scale": "htk"}),
    ("stft @ 44.1 kHz (exact)", RATE, "stft", {}),
]


#: the classes whose descriptors the captions' prompt checks compare (captions.PROMPT_INSTRUMENTS)
DESCRIBED = ("kick", "snare", "tom")


def held_out_clips(root: str, limit: int | None, split: str = "test") -> tuple[np.ndarray, list[str]]:
    """The ``split``'s one-shots ``[clips, samples]`` at 44.1 kHz (``test``: the held-out kits), as
    starter v2 prepares them, and each one's class."""
    from diffusionkit_audio.drumkits_dataset import DrumKitsDataset
    from diffusionkit_audio.modality import AudioModality

    modality = AudioModality(sample_rate=RATE, normalize="loudness", codec_options=MEL_44K)
    dataset = DrumKitsDataset(modality, root=root, split=split)
    classes = [dataset.classes[label] for label in dataset.labels]
    return (dataset.waves[:limit], classes[:limit]) if limit else (dataset.waves, classes)


def interleaved_ms(jobs: list[Callable[[int], object]], count: int) -> list[float]:
    """Median milliseconds of ``job(i)`` over ``i < count`` for every job, after one untimed call
    each; the jobs take turns clip by clip, so that a machine busy with something else slows
    them alike."""
    for job in jobs:
        job(0)
    times: list[list[float]] = [[] for _ in jobs]
    for i in range(count):
        for job, spent in zip(jobs, times):
            start = time.perf_counter()
            job(i)
            spent.append(time.perf_counter() - start)
    return [1e3 * statistics.median(spent) for spent in times]


def scores(originals: np.ndarray, decoded: np.ndarray) -> tuple[str, ...]:
    """LSD, MR-STFT SC, MR-STFT log-mag and the HF energy ratio, formatted."""
    from diffusionkit_audio.spectral_metrics import energy_above, log_spectral_distance, multi_resolution_stft

    reference, estimate = torch.from_numpy(originals), torch.from_numpy(decoded)
    convergence, log_distance = multi_resolution_stft(reference, estimate)
    high, total = energy_above(estimate, RATE, 8000.0)
    high_ref, total_ref = energy_above(reference, RATE, 8000.0)
    ratio = float(high.sum() / total.sum()) / max(float(high_ref.sum() / total_ref.sum()), 1e-20)
    return (f"{float(log_spectral_distance(reference, estimate).mean()):.2f}", f"{float(convergence.mean()):.3f}",
            f"{float(log_distance.mean()):.3f}", f"{ratio:.2f}")


def descriptor_rows(name: str, originals: np.ndarray, decoded: np.ndarray, classes: list[str]) -> list[tuple[str, ...]]:
    """A row per class of :data:`DESCRIBED`: each descriptor's rank correlation, original vs round trip."""
    from diffusionkit_audio.captions import WORD_PAIRS, descriptors
    from scipy.stats import spearmanr  # tied values share their mean rank

    before = [descriptors(wave, RATE) for wave in originals]
    after = [descriptors(wave, RATE) for wave in decoded]
    rows = []
    for kind in DESCRIBED:
        members = [i for i, c in enumerate(classes) if c == kind]
        rows.append((name, f"{kind} ({len(members)})", *(
            f"{spearmanr([before[i][d] for i in members], [after[i][d] for i in members]).statistic:.2f}"
            for d in WORD_PAIRS)))
    return rows


def route_rows(originals: np.ndarray, classes: list[str]) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """One row per route of :data:`ROUTES` (the scores, then the times, taken in turns), and the
    44.1 kHz routes' :func:`descriptor_rows`."""
    from diffusionkit_audio.audio_io import resample
    from diffusionkit_audio.modality import AudioModality

    rows, described, encoders, decoders, seconds = [], [], [], [], []
    length = originals.shape[-1]
    for name, rate, codec, options in ROUTES:
        modality = AudioModality(sample_rate=rate, codec=codec, codec_options=options)
        clips = resample(originals, RATE, rate).astype(np.float32) if rate != RATE else originals
        encoded = [modality.encode_wave(clip) for clip in clips]
        torch.manual_seed(0)  # Griffin-Lim starts from random phases
        decoded = np.stack([modality.decode(x)[0] for x in encoded])
        again = torch.stack([modality.encode_wave(wave) for wave in decoded])
        rmse = float((again - torch.stack(encoded)).square().mean().sqrt())
        if rate != RATE:
            decoded = resample(decoded, rate, RATE).astype(np.float32)
        decoded = np.pad(decoded[:, :length], ((0, 0), (0, max(0, length - decoded.shape[-1]))))
        if rate == RATE:
            described.extend(descriptor_rows(name, originals, decoded, classes))
        rows.append((name, "x".join(map(str, modality.shape)), *scores(originals, decoded), f"{rmse:.3f}"))
        encoders.append(lambda i, m=modality, c=clips: m.encode_wave(c[i]))
        decoders.append(lambda i, m=modality, e=encoded: m.decode(e[i]))
        seconds.append(modality.num_samples / rate)  # times per 1 s of sound
    encode_ms = interleaved_ms(encoders, len(originals))
    decode_ms = interleaved_ms(decoders, len(originals))
    return [(*row, f"{e / s:.1f}", f"{d / s:.1f}") for row, e, d, s in zip(rows, encode_ms, decode_ms, seconds)], described


def ablation_rows(originals: np.ndarray) -> list[tuple[str, ...]]:
    """The pghi decoder's steps one at a time on the 44.1 kHz mel (decode ms per 1 s clip)."""
    from diffusionkit_audio.codecs import MelCodec
    from diffusionkit_audio.phase_retrieval import (fast_griffin_lim, interpolate_frames, mel_to_magnitude,
                                                    pghi_phase)

    codec = MelCodec(RATE, **MEL_44K)
    length = originals.shape[-1]
    mel_power = codec.mel_power(codec.encode(torch.from_numpy(originals)[:, None])[:, 0])

    def magnitude(kind: str, index: int) -> torch.Tensor:
        power = mel_power[index:index + 1]
        if kind == "pinv":
            return torch.einsum("fm,...mt->...ft", codec.from_mel, power).clamp_min(0.0).sqrt()
        return mel_to_magnitude(power, codec.to_mel.fb, codec.silence_power, 0 if kind == "spread" else 5)

    def decode(kind: str, hop: int, init: str, iterations: int, index: int) -> torch.Tensor:
        mag = interpolate_frames(magnitude(kind, index), codec.hop_length, hop, length)
        if init == "PGHI":
            phase = torch.from_numpy(pghi_phase(mag[0].numpy(), hop, codec.n_fft)).float()[None]
        elif init == "zero":
            phase = torch.zeros_like(mag)
        else:
            phase = torch.rand(mag.shape, generator=torch.Generator().manual_seed(index)) * (2 * np.pi)
        return fast_griffin_lim(mag, phase, codec.n_fft, hop, codec.window, length, iterations)[0]

    half = codec.decode_hop
    steps = [("pinv", 690, "random", 32), ("spread", 690, "random", 32), ("NNLS", 690, "random", 32),
             ("NNLS", half, "random", 16), ("NNLS", half, "zero", 16), ("NNLS", half, "PGHI", 16),
             ("NNLS", half, "random", 8), ("NNLS", half, "PGHI", 8), ("NNLS", half, "PGHI", 4),
             ("NNLS", half, "PGHI", 0)]
    rows = []
    for kind, hop, init, iterations in steps:
        decoded = np.stack([decode(kind, hop, init, iterations, i).numpy() for i in range(len(originals))])
        rows.append((kind, str(hop), init, str(iterations), *scores(originals, decoded)))
    times = interleaved_ms([lambda i, step=step: decode(*step, i) for step in steps], len(originals))
    return [(*row, f"{ms * RATE / length:.1f}") for row, ms in zip(rows, times)]


def machine_note() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = f"{names[0]} x{len(names)}" if names else cpu
    except OSError:
        pass
    return f"{cpu}; torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/usr/share/hydrogen/data/drumkits", help="drum kits (data=drumkits root)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips (quick look)")
    parser.add_argument("--no-ablation", action="store_true", help="only the route table")
    parser.add_argument("--split", default="test", choices=("test", "all"),
                        help="the held-out kits (default), or every kit (more clips per class for the descriptors)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusionkit.commands import quiet_libraries

    quiet_libraries()
    if not Path(args.root).exists():
        print(f"bench_audio_codecs: skipped, no drum kits at {args.root} (apt-get install hydrogen-drumkits, "
              "or --root <folder of kits>)")
        return
    originals, classes = held_out_clips(args.root, args.limit, args.split)
    command = " ".join(["python", "benchmarks/bench_audio_codecs.py", *sys.argv[1:]])
    print(f"$ {command}")
    print(f"machine: {machine_note()}")
    kits = "3 held-out kits" if args.split == "test" else "every kit"
    print(f"material: {len(originals)} one-shots (data=drumkits split={args.split}: {kits}) at 44.1 kHz, "
          f"{originals.shape[-1]} samples each; every figure against the original 44.1 kHz clips\n")
    rows, described = route_rows(originals, classes)
    print_table(("route", "model space", "LSD dB", "MR-STFT SC", "MR-STFT log-mag", "HF energy >8 kHz",
                 "re-encode RMSE", "encode ms/s", "decode ms/s"), rows)
    from diffusionkit_audio.captions import WORD_PAIRS

    print("\nwhat each 44.1 kHz route keeps of the captions' descriptors: Spearman rank correlation over a "
          "class's clips, original vs round trip (1 = the order of the clips kept)")
    print_table(("route", "class (clips)", *(f"{d} ({'/'.join(w)})" for d, w in WORD_PAIRS.items())), described)
    if args.no_ablation:
        return
    print("\nablation of the pghi decoder on mel 96 @ 44.1 kHz (magnitude: pinv = pseudo-inverse clamped at 0, "
          "spread = band means interpolated in log power, NNLS = spread + 5 multiplicative NNLS updates; "
          "hop 690 = the codec's, 345 = half)")
    print_table(("magnitude", "hop", "initial phase", "FGLA iterations", "LSD dB", "MR-STFT SC", "MR-STFT log-mag",
                 "HF energy >8 kHz", "decode ms/s"), ablation_rows(originals))


if __name__ == "__main__":
    main()
