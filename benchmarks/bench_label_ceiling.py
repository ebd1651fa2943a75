"""How far a second, independent classifier family gets at naming real drums from kits it never
heard: the ceiling beside ``label=auto`` (the bundle's recogniser) on the same one-shots.

    python benchmarks/bench_label_ceiling.py [--ckpt drums_starter] [--root DIR]

Reads every kit of ``data=drumkits`` (Debian's hydrogen-drumkits by default, ``split=all``, as the
model's modality prepares them) and describes each one-shot by hand-made descriptors of its
waveform (librosa: a 48-band mel spectrum in 5 time windows, the loudness envelope at 9 times,
decay times, spectral centroid, flatness and zero crossings, 20 MFCCs per window), then fits
scikit-learn classifiers (class-balanced) and prints a markdown table:

- leave one kit out: every one-shot named by a classifier that never heard its kit;
- trained on the kits the starter learned, naming the 3 kits held out from it (``label=auto``'s
  situation), beside the bundle's recogniser on the same items, and how many items both miss.

A figure far above the recogniser's would say the recogniser is the weak part; the same figure,
with the same items missed, says the one-shots and their instrument names set the ceiling.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, real_kits_dataset  # noqa: E402

from diffusionkit.bundle import load_model  # noqa: E402

HELD_OUT = ("ColomboAcousticDrumkit", "HardElectro1", "rumpf_kit_z01_h2")
#: seconds: the windows the spectrum, centroid, flatness, zero crossings and MFCCs are averaged over
WINDOWS = ((0.0, 0.03), (0.03, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 1.0))
#: seconds: where the loudness envelope is read
ENVELOPE_TIMES = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 0.9)
HOP = 256


def descriptors(wave: np.ndarray, rate: int) -> np.ndarray:
    """One one-shot's descriptor vector (see the module docstring)."""
    import librosa

    wave = np.asarray(wave, dtype=np.float32)
    wave = wave.mean(0) if wave.ndim > 1 else wave
    power = np.abs(librosa.stft(wave, n_fft=2048, hop_length=HOP)) ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=rate, n_mels=48, fmin=20, fmax=rate / 2.2)
    times = librosa.frames_to_time(np.arange(mel.shape[1]), sr=rate, hop_length=HOP)
    total = mel.sum(0)
    peak = total.max() + 1e-12
    envelope = np.maximum(10 * np.log10(total / peak + 1e-10), -100)
    centroid = librosa.feature.spectral_centroid(S=np.sqrt(power), sr=rate)[0]
    flatness = librosa.feature.spectral_flatness(S=np.sqrt(power))[0]
    crossings = librosa.feature.zero_crossing_rate(wave, hop_length=HOP)[0][:len(times)]
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=20)
    parts: list[np.ndarray] = []
    for start, end in WINDOWS:
        inside = (times >= start) & (times < end)
        spectrum = mel[:, inside].mean(1) + 1e-12
        weights = total[inside] + 1e-12
        parts += [np.maximum(10 * np.log10(spectrum / peak), -100), np.maximum(10 * np.log10(spectrum / spectrum.sum()), -60),
                  [envelope[inside].mean()], mfcc[:, inside].mean(1),
                  [np.log(np.average(centroid[inside], weights=weights) + 1),
                   np.log(np.average(flatness[inside], weights=weights) + 1e-8), np.average(crossings[inside], weights=weights)]]
    parts.append([envelope[min(int(t * rate / HOP), len(envelope) - 1)] for t in ENVELOPE_TIMES])
    after_peak = envelope[int(np.argmax(total)):]
    for threshold in (-10, -20, -30, -40):
        below = np.nonzero(after_peak < threshold)[0]
        parts.append([(below[0] if len(below) else len(after_peak)) * HOP / rate])
    return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])


def classifiers() -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return {
        "logistic regression (C=0.1)": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced")),
        "RBF SVM (C=3)": lambda: make_pipeline(StandardScaler(), SVC(C=3, class_weight="balanced")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", default="drums_starter", help="an audio bundle trained on data=drumkits")
    parser.add_argument("--root", default=None, help="the folder of kits (default: the bundle's data.dataset.root)")
    args = parser.parse_args()
    model = load_model(args.ckpt)
    dataset = real_kits_dataset(model, args.root)
    labels = np.array([int(dataset[i]["label"]) for i in range(len(dataset))])
    kits = np.array([str(s) for s in dataset.sources])
    features = np.stack([descriptors(w, dataset.sample_rate) for w in dataset.waves])
    held = np.isin(kits, HELD_OUT)
    x_held = torch.stack([dataset[i]["x"] for i in np.nonzero(held)[0]]).float()
    recognised = model.recognize(x_held).cpu().numpy() == labels[held]  # label=auto
    print(f"{len(labels)} one-shots, {len(set(kits))} kits, {features.shape[1]} descriptors; held out: {held.sum()} "
          f"from {', '.join(HELD_OUT)}\n")
    rows = [("the bundle's recogniser (label=auto)", "", f"{recognised.mean():.1%}", "")]
    for name, make in classifiers().items():
        named = np.empty_like(labels)
        for kit in sorted(set(kits)):
            out = kits == kit
            named[out] = make().fit(features[~out], labels[~out]).predict(features[out])
        held_named = make().fit(features[~held], labels[~held]).predict(features[held]) == labels[held]
        rows.append((name, f"{np.mean(named == labels):.1%}", f"{held_named.mean():.1%}",
                     f"{np.sum(~held_named & ~recognised)} of {np.sum(~recognised)}"))
        print_table(("classifier", "leave one kit out, every kit", "starter's kits -> 3 held-out kits",
                     "held-out items the recogniser misses that it misses too"), rows[-1:])
    print()
    print_table(("classifier", "leave one kit out, every kit", "starter's kits -> 3 held-out kits",
                 "held-out items the recogniser misses that it misses too"), rows)


if __name__ == "__main__":
    main()
