"""Data-parallel training on the CPU: does a 2-process DDP run (``trainer=ddp_cpu``, gloo) reach
the loss of a 1-process run at the same global batch?

    python benchmarks/bench_ddp.py [--steps 150] [--batch 16] [--seeds 0 1 2]

Each run is ``diffusionkit train modality=image data=digits net=unet_small ...``: once as one
process with batch B, once as two processes with batch B/2 each. Both final bundles (EMA
weights) are judged alike: the mean denoising loss over the run's held-out digits, with the same
noise levels and noise for both (4 draws per item). Both layouts get the same CPU cores (``CORES`` threads in
total); wall time includes starting the processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402

CORES = 2  # this project's machine; each run uses all of them
RECIPE = ["modality=image", "data=digits", "net=unet_small", "trainer.limit_val_batches=0", "logger=none",
          "samples.every_n_steps=0", "checkpoint.every_n_train_steps=100000", "optim.lr_scheduler.total_iters=20"]


def train(out: Path, seed: int, steps: int, batch: int, processes: int) -> float:
    """Train one bundle into ``out``; return the wall time in seconds."""
    preset = ["trainer=ddp_cpu", f"trainer.devices={processes}"] if processes > 1 else []
    command = [sys.executable, "-m", "diffusionkit.cli", "train", *RECIPE, *preset, f"seed={seed}",
               f"trainer.max_steps={steps}", f"data.batch_size={batch}", f"out={out}"]
    threads = {"OMP_NUM_THREADS": str(max(1, CORES // processes))}  # the same cores for both layouts
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **threads})
    if result.returncode:
        raise SystemExit(f"training failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


@torch.no_grad()
def held_out_loss(bundle: Path, draws: int = 4) -> float:
    """Mean denoising loss of a bundle over its run's validation split (fixed noise per batch)."""
    from hydra.utils import instantiate

    from diffusionkit.bundle import load_model
    from diffusionkit.training.datamodule import ModalityDataModule

    model = load_model(bundle)
    cfg = model.config
    data = ModalityDataModule(instantiate(cfg.data.dataset), batch_size=64, val_fraction=cfg.data.val_fraction,
                              seed=cfg.seed)
    losses = []
    for index, batch in enumerate(data.val_dataloader()):
        for draw in range(draws):
            generator = torch.Generator().manual_seed(1000 * index + draw)
            losses.append(float(model.module.loss(batch, generator=generator)))
    return statistics.fmean(losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=16, help="global batch (split over the processes)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, gaps = [], []
    with TemporaryDirectory() as tmp:
        for seed in args.seeds:
            losses = {}
            for processes in (1, 2):
                out = Path(tmp) / f"seed{seed}_p{processes}"
                seconds = train(out, seed, args.steps, args.batch // processes, processes)
                losses[processes] = held_out_loss(out / "model.safetensors")
                rows.append([seed, f"{processes} x {args.batch // processes}", f"{losses[processes]:.4f}",
                             f"{seconds:.0f} s", f"{args.steps * args.batch / seconds:.1f}"])
            gaps.append(losses[2] - losses[1])
    print(f"{args.steps} steps, global batch {args.batch}, net=unet_small on digits (32x32), {CORES} CPU threads\n")
    print_table(["seed", "processes x batch", "held-out loss (EMA)", "wall time", "samples/s (incl. start)"], rows)
    spread = statistics.stdev(gaps) if len(gaps) > 1 else float("nan")
    print(f"\nloss(2 processes) - loss(1 process): mean {statistics.fmean(gaps):+.4f}, "
          f"per seed {', '.join(f'{g:+.4f}' for g in gaps)} (spread {spread:.4f})")


if __name__ == "__main__":
    main()
