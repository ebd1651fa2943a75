"""How well judges trained on real drums recognise kits they never heard, and whether the audio
codec's round trip keeps real one-shots recognisable.

    python benchmarks/bench_real_judge.py [--ckpt drums_starter] [--epochs 8 24] [--threads N]
        [--settings plain augment balanced]

Reads every kit of ``data=drumkits`` (Debian's hydrogen-drumkits, ``split=all``) as the model's
modality prepares them, then for each judge setting trains ``evaluate``'s judges by kit (5 folds:
every one-shot is judged by a classifier that never heard its kit,
:func:`diffusionkit.evaluation.judge_by_source`) and prints a markdown table: accuracy over all
kits, over the 3 kits held out from the starter's training, and over those 3 kits' one-shots
after the codec round trip (decoded to a waveform and encoded again, what a model's output goes
through), by the same fold classifiers. Settings: plain (random shifts only, the self-judged
default), + the modality's augmentations, + a class-balanced label-smoothed loss; the rows name
their epochs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, real_kits_dataset  # noqa: E402

from diffusionkit.bundle import load_model  # noqa: E402 (resolves shipped bundle names)
from diffusionkit.evaluation import judge_by_source  # noqa: E402
from diffusionkit.training.augment import Augmenter  # noqa: E402

#: judge settings: random shifts only, + the modality's augmentations, + a class-balanced loss
SETTINGS = {"plain": "random shifts", "augment": "+ augmentations", "balanced": "+ augmentations, balanced"}
HELD_OUT = ("ColomboAcousticDrumkit", "HardElectro1", "rumpf_kit_z01_h2")


def real_kits(model) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """Every usable one-shot of every kit, as the model's modality prepares it."""
    dataset = real_kits_dataset(model)
    x = torch.stack([dataset[i]["x"] for i in range(len(dataset))]).float()
    labels = torch.tensor([int(dataset[i]["label"]) for i in range(len(dataset))])
    return x, labels, [str(s) for s in dataset.sources], list(dataset.classes)


def round_trip(modality, x: torch.Tensor) -> torch.Tensor:
    """Each item decoded to a waveform and encoded again."""
    return torch.stack([modality.encode_wave(modality.decode(item)) for item in x])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", default="drums_starter", help="an audio bundle trained on data=drumkits")
    parser.add_argument("--epochs", type=int, nargs="+", default=[8, 24])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS),
                        help="judge settings to run (balanced: evaluate's real-data default)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.ckpt)
    x, labels, sources, classes = real_kits(model)
    held = torch.tensor([s in HELD_OUT for s in sources])
    trips = round_trip(model.modality, x[held])
    print(f"{len(x)} one-shots, {len(set(sources))} kits, {len(classes)} classes; held out: {held.sum()} from "
          f"{', '.join(HELD_OUT)}\n")
    augmenter = Augmenter(model.modality, "all", 0.5)
    settings = [(SETTINGS[key], augmenter if key != "plain" else None, key == "balanced") for key in args.settings]
    rows = []
    for epochs in args.epochs:
        for name, augment, balanced in settings:
            start = time.perf_counter()
            judge = judge_by_source(x, labels, sources, 2, len(classes), folds=5, epochs=epochs, batch_size=128,
                                    lr=2e-3, width=32, augment=augment, balanced=balanced)
            correct = judge.predict(x, judge.heldout_folds) == labels
            trip_correct = judge.predict(trips, judge.heldout_folds[held]) == labels[held]
            rows.append((f"{name}, {epochs} epochs", f"{correct.float().mean():.1%}",
                         f"{correct[held].float().mean():.1%}", f"{trip_correct.float().mean():.1%}",
                         f"{time.perf_counter() - start:.0f}"))
            print_table(("judge", "all kits", "3 held-out kits", "held-out, codec round trip", "s"), rows[-1:])
    print()
    print_table(("judge", "all kits", "3 held-out kits", "held-out, codec round trip", "s"), rows)


if __name__ == "__main__":
    main()
