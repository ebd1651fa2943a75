"""Teach the starter one real kit its diffusion model never heard (its recogniser, which
``new_class_init=heard`` and the forgetting figure ask, has learned it since), judged by that kit's
own held-out samples:
issue 17's measurement as it words it, on the AVL Red Zeppelin kit (Debian's
``avldrums.lv2-soundfont``, GPL-2+; every drum recorded at 5 velocities).

    apt-get install avldrums.lv2-soundfont
    python benchmarks/bench_finetune_sf2_kit.py [--ckpt drums_starter] [--work DIR] [--new-class ride]
        [--judge-layers 2 4] [--min-files 5] [--n-per-class 16] [--finetune OVERRIDE ...] [--skip-finetune]

The kit's samples are read out of the SoundFont (``bench_sf2_kits.py``) and prepared as the
starter prepares kits (``data=drumkits``: onset, loudness, near-duplicates dropped). The velocity
layers ``--judge-layers`` of every drum are held out; the others of each class with at least
``--min-files`` of them become the user's folder (``DIR/my_kit/<class>/*.wav``), which must hold
``--new-class``, a class the starter lacks. Then, as a user would (a fresh process, timed):

    diffusionkit finetune ckpt=... data=folder data.dataset.root=DIR/my_kit out=DIR/finetune

A judge (the classifier ``evaluate`` trains for real data: augmented takes, class-balanced loss,
20 epochs) learns the held-out layers of every class of the kit; its accuracy on the user's
files (the other layers, which it never heard) is stated. ``--n-per-class`` one-shots the adapter
generates for each class of the folder (20 DPM-Solver++ steps, guidance 2) are judged by it.
The base's other classes, judged on other kits, are ``bench_finetune_kit.py``'s measurement.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_finetune_kit import base_lacking, cost_rows, finetune_parser, finetuned  # noqa: E402
from bench_sf2_kits import write_kit  # noqa: E402
from common import print_table, real_kits_dataset  # noqa: E402

from diffusionkit.bundle import load_model  # noqa: E402
from diffusionkit.evaluation import TensorItems, fit_classifier, per_class_accuracy, predict  # noqa: E402
from diffusionkit.training.augment import Augmenter  # noqa: E402

SOUNDFONT = "/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2"


def velocity_layer(path: str) -> int | None:
    """"51-ZildjianA24Ride-3.wav" -> 3 (None for a sample of one layer)."""
    last = Path(path).stem.rsplit("-", 1)[-1]
    return int(last) if last.isdigit() else None


def kit_items(model, soundfont: Path, classes: list[str], scratch: Path):
    """The kit's samples of ``classes``, prepared as ``data=drumkits`` prepares a kit."""
    from omegaconf import OmegaConf

    counts = write_kit(soundfont, classes, scratch / "kits" / soundfont.stem)
    present = [name for name in classes if counts.get(name)]
    config = OmegaConf.merge(model.config, {"data": {"dataset": {"classes": present}}})
    return real_kits_dataset(dataclasses.replace(model, config=config), str(scratch / "kits"))


def write_folder(dataset, indices: list[int], folder: Path) -> dict[str, int]:
    import soundfile as sf

    counts: dict[str, int] = {}
    for i in indices:
        name = dataset.classes[dataset.labels[i]]
        counts[name] = counts.get(name, 0) + 1
        path = folder / name / Path(dataset.files[i]).name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.asarray(dataset.waves[i]).T, dataset.sample_rate)
    return counts


def main() -> None:
    parser = finetune_parser(__doc__, "runs/bench_finetune_sf2_kit")
    parser.add_argument("--soundfont", default=SOUNDFONT)
    parser.add_argument("--judge-layers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--min-files", type=int, default=5)
    args = parser.parse_args()
    if not Path(args.soundfont).is_file():
        print(f"bench_finetune_sf2_kit needs {args.soundfont}: apt-get install avldrums.lv2-soundfont")
        return
    model = base_lacking(args.ckpt, args.new_class)
    with tempfile.TemporaryDirectory(prefix="bench_finetune_sf2_kit_") as scratch:
        kit = kit_items(model, Path(args.soundfont), [*model.classes, args.new_class], Path(scratch))
    held = [i for i, f in enumerate(kit.files) if velocity_layer(f) in args.judge_layers]
    if not held:
        raise SystemExit(f"no sample of the kit is of velocity layers {args.judge_layers}; name others with --judge-layers")
    rest = [i for i in range(len(kit.files)) if i not in held]
    per_class = {name: [i for i in rest if kit.classes[kit.labels[i]] == name] for name in kit.classes}
    taught = [name for name, items in per_class.items() if len(items) >= args.min_files]
    if args.new_class not in taught:
        raise SystemExit(f"the kit has {len(per_class.get(args.new_class, []))} files of '{args.new_class}' "
                         f"outside the judge's layers; --min-files is {args.min_files}")
    adapter, finetune_s = finetuned(args, lambda folder: write_folder(
        kit, [i for name in taught for i in per_class[name]], folder))

    x = torch.stack([kit[i]["x"] for i in range(len(kit.files))]).float()
    labels = torch.tensor(kit.labels)
    judge = fit_classifier(TensorItems(x[held], labels[held]), model.modality.spatial_rank, x.shape[1],
                           len(kit.classes), epochs=20, augment=Augmenter(model.modality, "all"), balanced=True)
    with torch.no_grad():
        judged_rest = (predict(judge, x[rest]) == labels[rest]).float().mean()

    tuned_model = load_model(adapter)
    names = list(tuned_model.classes)
    generator = torch.Generator().manual_seed(0)
    rows = [*cost_rows(adapter, finetune_s),
            (f"judge (layers {args.judge_layers}, {len(held)} one-shots) on the user's {len(rest)} files",
             f"{judged_rest:.1%}", "")]
    scores = []
    for name in taught:
        wanted = torch.full((args.n_per_class,), names.index(name))
        with torch.no_grad():
            samples = tuned_model.module.sample(args.n_per_class, wanted, steps=20, guidance_scale=args.guidance,
                                                generator=generator).float()
        truth = torch.full((args.n_per_class,), kit.classes.index(name))
        with torch.no_grad():
            heard = predict(judge, samples)
        score = per_class_accuracy(heard, truth, len(kit.classes))[kit.classes.index(name)]
        scores.append(score)
        rows.append((f"'{name}' generated ({len(per_class[name])} files taught)", f"{score:.1%}", ">= 85%"))
    rows.append(("the kit's classes generated, mean", f"{np.mean(scores):.1%}", ">= 85%"))
    print_table(("measurement", "value", "bar"), rows)


if __name__ == "__main__":
    main()
