"""Teach the starter a kit of your own: issue 17's measurement, reproducible in one command.

    python benchmarks/bench_finetune_kit.py [--ckpt drums_starter] [--work DIR] [--new-class ride]
        [--per-class 20] [--n-per-class 16] [--guidance 2.0] [--finetune OVERRIDE ...] [--skip-finetune]

Builds a user's sample folder (``DIR/my_kit/<class>/*.wav``) from Debian's hydrogen-drumkits:
every one-shot of kick, snare, tom and closed hat in the 3 kits held out from the starter's
training (a kit it never heard), plus ``--per-class`` one-shots of a class the starter lacks
(``--new-class``, default ride) from the other kits, which the starter's data left out. Then it
runs, as a user would (fresh processes, wall time measured):

1. ``diffusionkit finetune ckpt=... data=folder data.dataset.root=DIR/my_kit out=DIR/finetune``
   (``--finetune`` adds overrides, e.g. ``steps=800``);
2. ``diffusionkit evaluate`` of the adapter on the real kits with the new class added: judges
   trained by kit (5 folds; each real one-shot judged by a classifier that never heard its kit),
   ``--n-per-class`` generated one-shots of every class judged by the one trained on every kit.

and prints a table: finetune wall time, adapter size, the base's classes and the new class as
recognised, and the judge's own accuracy on real one-shots of the new class from kits it never
heard (the ceiling a generated one-shot is measured against).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, real_kits_dataset  # noqa: E402

from diffusionkit.bundle import load_model  # noqa: E402

HELD_OUT = ("ColomboAcousticDrumkit", "HardElectro1", "rumpf_kit_z01_h2")
#: the classes taken from the held-out kits (those with several one-shots there)
KIT_CLASSES = ("kick", "snare", "tom", "closed_hat")


def build_folder(model, new_class: str, per_class: int, folder: Path) -> dict[str, int]:
    """Write the user's folder; the count of files per class."""
    import soundfile as sf
    from omegaconf import OmegaConf

    with_new = OmegaConf.merge(model.config, {"data": {"dataset": {"classes": [*model.classes, new_class]}}})
    dataset = real_kits_dataset(dataclasses.replace(model, config=with_new))
    counts: dict[str, int] = {}
    for i, (kit, label) in enumerate(zip(dataset.kits, dataset.labels)):
        name = dataset.classes[label]
        wanted = (kit in HELD_OUT and name in KIT_CLASSES) or (kit not in HELD_OUT and name == new_class)
        if not wanted or (name == new_class and counts.get(name, 0) >= per_class):
            continue
        counts[name] = counts.get(name, 0) + 1
        path = folder / name / f"{kit}_{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.asarray(dataset.waves[i]).T, dataset.sample_rate)
    return counts


DIFFUSIONKIT = str(Path(sys.executable).with_name("diffusionkit"))


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def finetune_parser(doc: str, work: str) -> argparse.ArgumentParser:
    """The options of the fine-tuning benchmarks (each adds its own)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--ckpt", default="drums_starter")
    parser.add_argument("--work", default=work)
    parser.add_argument("--new-class", default="ride")
    parser.add_argument("--n-per-class", type=int, default=16)
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--finetune", nargs="*", default=[], help="overrides for finetune, e.g. steps=800")
    parser.add_argument("--skip-finetune", action="store_true", help="judge the adapter already in --work")
    return parser


def base_lacking(ckpt: str, new_class: str):
    """The base bundle, refused in one line when it already has ``new_class``."""
    model = load_model(ckpt)
    if new_class in model.classes:
        raise SystemExit(f"--new-class {new_class}: the base already has it; name a class it lacks")
    return model


def finetuned(args: argparse.Namespace, write_folder: Callable[[Path], dict[str, int]]) -> tuple[Path, float | None]:
    """The adapter in ``--work``/finetune and the wall time of making it: unless ``--skip-finetune``,
    ``write_folder`` writes the user's folder (``--work``/my_kit; it returns the files per class)
    and ``diffusionkit finetune`` runs on it as a fresh process."""
    work = Path(args.work).resolve()
    folder, tuned = work / "my_kit", work / "finetune"
    seconds = None
    if not args.skip_finetune:
        if folder.exists() or tuned.exists():
            raise SystemExit(f"{work} holds an earlier run; remove it or name another --work")
        counts = write_folder(folder)
        print("the user's folder:", ", ".join(f"{n} {name}" for name, n in counts.items()), flush=True)
        seconds = timed([DIFFUSIONKIT, "finetune", f"ckpt={args.ckpt}", "data=folder", f"data.dataset.root={folder}",
                         f"out={tuned}", *args.finetune])
    adapter = tuned / "adapter.safetensors"
    if not adapter.is_file():
        raise SystemExit(f"no adapter at {adapter}: run without --skip-finetune first")
    return adapter, seconds


def cost_rows(adapter: Path, seconds: float | None) -> list[tuple[str, str, str]]:
    """The table rows of fine-tuning's wall time and the adapter's size."""
    return [("finetune wall time (fresh process)", f"{seconds:.0f} s" if seconds else "(not run)", "<= 300 s"),
            ("adapter file", f"{adapter.stat().st_size / 1e6:.2f} MB", "<= 2 MB")]


def main() -> None:
    parser = finetune_parser(__doc__, "runs/bench_finetune_kit")
    parser.add_argument("--per-class", type=int, default=20)
    args = parser.parse_args()
    model = base_lacking(args.ckpt, args.new_class)

    def write_folder(folder: Path) -> dict[str, int]:
        counts = build_folder(model, args.new_class, args.per_class, folder)
        if args.new_class not in counts:
            raise SystemExit(f"no one-shot of '{args.new_class}' outside the held-out kits; name another --new-class")
        return counts

    adapter, finetune_s = finetuned(args, write_folder)
    graded = Path(args.work).resolve() / "evaluate"
    classes = [*model.classes, args.new_class]
    timed([DIFFUSIONKIT, "evaluate", f"ckpt={adapter}", "data=drumkits", "data.dataset.split=all",
           f"data.dataset.classes=[{','.join(classes)}]", f"heldout_sources=[{','.join(HELD_OUT)}]",
           f"n_per_class={args.n_per_class}", f"guidance={args.guidance}", "vary.strengths=[]",
           "auto_label_per_class=0", f"out={graded}"])
    result = json.loads((graded / "evaluation.json").read_text())
    per_class = result["per_class"]
    base = [per_class[name] for name in model.classes if per_class.get(name) is not None]
    rows = [
        *cost_rows(adapter, finetune_s),
        ("judge on real one-shots of kits it never heard: all / the new class",
         f"{result['real_heldout_accuracy']:.1%} / {result['real_per_class'][args.new_class]:.1%}", ""),
        (f"the base's {len(base)} classes generated by the adapter", f"{np.mean(base):.1%}", ">= 85%"),
        (f"the new class '{args.new_class}' generated", f"{per_class[args.new_class]:.1%}", ">= 85%"),
    ]
    print_table(("measurement", "value", "bar"), rows)

if __name__ == "__main__":
    main()
