"""Loss curves of training runs side by side: was a speed change free (same seed, same recipe)?

    python benchmarks/compare_loss_curves.py LABEL=RUN_FOLDER [LABEL=RUN_FOLDER ...] [--window 100]

Reads each run's ``csv/metrics.csv`` (``logger=csv``, as the recipes log) and prints the mean
training loss over every ``--window`` steps and each validation loss, one column per run. Two
runs of one recipe with different seeds give the noise a speed change must stay within.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402


def read_metrics(folder: Path) -> tuple[dict[int, float], dict[int, float]]:
    """(train loss by step, validation loss by step) of a run folder."""
    path = folder / "csv" / "metrics.csv"
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (train with logger=csv)")
    train, val = {}, {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            step = int(row["step"])
            if row.get("train/loss"):
                train[step] = float(row["train/loss"])
            if row.get("val/loss"):
                val[step] = float(row["val/loss"])
    return train, val


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=RUN_FOLDER")
    parser.add_argument("--window", type=int, default=100)
    args = parser.parse_args()
    runs = {label: read_metrics(Path(folder)) for label, folder in (run.split("=", 1) for run in args.runs)}
    last = max(max(train, default=0) for train, _ in runs.values())
    rows = []
    for start in range(0, last + 1, args.window):
        cells = []
        for train, _ in runs.values():
            losses = [loss for step, loss in train.items() if start <= step < start + args.window]
            cells.append(f"{statistics.mean(losses):.4f}" if losses else "")
        rows.append([f"train, steps {start}-{start + args.window - 1}", *cells])
    for step in sorted({step for _, val in runs.values() for step in val}):
        rows.append([f"val, step {step}", *(f"{val[step]:.4f}" if step in val else "" for _, val in runs.values())])
    print_table(["mean loss", *runs], rows)


if __name__ == "__main__":
    main()
