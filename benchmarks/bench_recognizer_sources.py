"""``label=auto`` by recognisers trained on one, two or three families of real kits, each graded
on the Hydrogen kits no recogniser learns and on the families it did not learn.

    apt-get install hydrogen-drumkits avldrums.lv2-soundfont fluidsynth fluid-soundfont-gm
    python benchmarks/bench_recognizer_sources.py [--ckpt drums_starter] [--seeds 0 1 2] [--work DIR]

The families: the starter's 10 Hydrogen training kits (its 3 held-out kits are never learned),
the AVL Drumkits' Red Zeppelin and Black Pearl read out of their SoundFont files
(``bench_sf2_kits.py``), and 7 General MIDI kits rendered from FluidR3 (``bench_gm_kits.py``).
Each recogniser is trained as ``diffusionkit recognizer`` trains one (the judges' classifier, the
modality's augmentations, a class-balanced loss, 20 epochs, 16 augmented takes when naming) on the
bundle's own preprocessing, once per seed; a family it learned is marked "(learned)", so only the
other cells say how it does on recordings it never heard. About 2 minutes per recogniser on 2 cores.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gm_kits import SOUNDFONT as GM_SOUNDFONT, render_kits  # noqa: E402
from bench_sf2_kits import SOUNDFONTS as AVL_SOUNDFONTS, write_kit  # noqa: E402
from common import kits_parser, labelled_bundle, print_table, real_kits_dataset  # noqa: E402

HYDROGEN = "/usr/share/hydrogen/data/drumkits"
#: the training families of each recogniser, by the names the table prints
TRAINED_ON = {"Hydrogen (the shipped recogniser before)": ["hydrogen"], "Hydrogen + GM": ["hydrogen", "gm"],
              "Hydrogen + AVL": ["hydrogen", "avl"], "Hydrogen + AVL + GM (shipped)": ["hydrogen", "avl", "gm"]}


def fit(model, roots: list[str], seed: int):
    """A recogniser trained on the training kits of ``roots``, as ``diffusionkit recognizer`` trains one."""
    from diffusionkit.apps.evaluate_real import judge_augmenter, labelled_items
    from diffusionkit.evaluation import TensorItems
    from diffusionkit.recognizer import DRAWS, Recognizer, fit_recognizer

    items = labelled_items(real_kits_dataset(model, roots, "train"), model.classes, "kits")
    augmenter = judge_augmenter(model)
    classifier, _ = fit_recognizer(TensorItems(items.x, items.labels), model.modality.spatial_rank, items.x.shape[1],
                                   len(model.classes), seed=seed, augment=augmenter)
    return Recognizer(classifier.eval(), augmenter, DRAWS), len(items.labels)


def main() -> None:
    parser = kits_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    needed = [HYDROGEN, *AVL_SOUNDFONTS, GM_SOUNDFONT]
    missing = [path for path in needed if not Path(path).exists()]
    missing += [] if shutil.which("fluidsynth") else ["fluidsynth"]
    if missing:
        print(f"bench_recognizer_sources needs {', '.join(missing)}: apt-get install hydrogen-drumkits "
              "avldrums.lv2-soundfont fluidsynth fluid-soundfont-gm")
        return
    model = labelled_bundle(args.ckpt, args.work)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="bench_recognizer_sources_") as scratch:
        work = Path(args.work or scratch)
        avl = work / "avl"
        for soundfont in map(Path, AVL_SOUNDFONTS):
            write_kit(soundfont, list(model.classes), avl / soundfont.stem)
        (work / "gm").mkdir(parents=True, exist_ok=True)
        roots = {"hydrogen": HYDROGEN, "avl": str(avl), "gm": str(render_kits(Path(GM_SOUNDFONT), work / "gm"))}
        graded = {"Hydrogen's 3 held-out kits": real_kits_dataset(model, HYDROGEN, "test"),
                  "AVL kits": real_kits_dataset(model, roots["avl"]), "GM kits": real_kits_dataset(model, roots["gm"])}
        families = {"Hydrogen's 3 held-out kits": "held out", "AVL kits": "avl", "GM kits": "gm"}
        tests = {name: (d.x.float(), torch.tensor(d.labels)) for name, d in graded.items()}
        rows = []
        for name, families_learned in TRAINED_ON.items():
            scores: dict[str, list[float]] = {test: [] for test in tests}
            kicks: list[float] = []
            for seed in args.seeds:
                recognizer, items = fit(model, [roots[f] for f in families_learned], seed)
                for test, (x, labels) in tests.items():
                    right = (recognizer(x) == labels).float()
                    scores[test].append(float(right.mean()))
                    if test == "AVL kits":
                        kicks.append(float(right[labels == model.classes.index("kick")].mean()))
                print(f"{name}, seed {seed}: {items} one-shots; " +
                      ", ".join(f"{test} {values[-1]:.1%}" for test, values in scores.items()), flush=True)
            rows.append((name, *(f"{sum(v) / len(v):.1%} ({' / '.join(f'{s:.0%}' for s in v)})"
                                 + (" (learned)" if families[test] in families_learned else "")
                                 for test, v in scores.items()), f"{sum(kicks) / len(kicks):.0%}"))
    print(f"\nlabel=auto, mean over seeds {args.seeds} (each seed's figure in brackets); "
          f"{', '.join(f'{k}: {len(v[1])} one-shots' for k, v in tests.items())}\n")
    print_table(("recogniser trained on", *tests, "AVL kicks"), rows)


if __name__ == "__main__":
    main()
