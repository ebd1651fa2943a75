"""Seconds per training step and peak memory of every modality's default ``train`` and every
shipped recipe (issue 20: none may need more than 4 GB; defaults must train at a useful rate).

    python benchmarks/bench_defaults.py [--steps 4] [--only NAME ...] [--extra KEY=VALUE ...]

Each recipe runs in a fresh process (so its peak RSS is its own, data included): the config is
composed as ``diffusionkit train`` composes it, the dataset and the diffusion module are built
as ``train`` builds them, and ``--steps`` optimisation steps on one real batch are timed after
two warm-up steps (forward + loss + backward + gradient clipping + AdamW + EMA, in the
precision the trainer preset resolves to: ``trainer.precision: auto`` is bf16-mixed on a CPU
with native bf16), on the allocator the ``diffusionkit`` command preloads (``DIFFUSIONKIT_
ALLOCATOR=system`` for glibc's). Lightning's own loop is left out. ``--extra`` adds overrides to every recipe,
e.g. ``--extra net=unet data.batch_size=64 trainer.precision=32-true`` for the old defaults.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure_in_fresh_process, print_table  # noqa: E402

#: name -> overrides; the modality defaults first (no experiment), then every shipped experiment
RECIPES: dict[str, list[str]] = {
    "image default (data=digits)": ["modality=image", "data=digits"],
    "audio default (data=drums)": ["modality=audio", "data=drums"],
    "video default (data=sprites)": ["modality=video", "data=sprites"],
    "experiment=digits_fast": ["modality=image", "data=digits", "experiment=digits_fast"],
    "experiment=digits_dit": ["modality=image", "data=digits", "experiment=digits_dit"],
    "experiment=shapes_text": ["modality=image", "experiment=shapes_text"],
    "experiment=drums_starter": ["modality=audio", "data=drums", "experiment=drums_starter"],
    "experiment=drums_real": ["modality=audio", "experiment=drums_real"],
    "experiment=drums_text": ["modality=audio", "experiment=drums_text"],
    "experiment=sprites_fast": ["modality=video", "data=sprites", "experiment=sprites_fast"],
    "experiment=sprites_dit": ["modality=video", "data=sprites", "experiment=sprites_dit"],
}


def time_recipe(overrides: list[str], steps: int) -> dict[str, float | str]:
    """Build the recipe's run and time ``steps`` training steps (runs in a fresh process)."""
    from hydra.utils import instantiate

    from diffusionkit.config import compose_config
    from diffusionkit.training.build import build_diffusion_module, build_modality, num_classes_for
    from diffusionkit.training.datamodule import ModalityDataModule
    from diffusionkit.names import dataset_classes
    from diffusionkit.training.trainer_options import apply_module_options, lightning_precision

    cfg = compose_config("train", overrides)
    modality = build_modality(cfg)
    dataset = instantiate(cfg.data.dataset)
    datamodule = ModalityDataModule(dataset, batch_size=cfg.data.batch_size, val_fraction=0.0, seed=cfg.seed)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    module = build_diffusion_module(cfg, modality, num_classes_for(dataset_classes(dataset, "data")))
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    precision = lightning_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    apply_module_options(module, cfg.trainer, modality.spatial_rank)  # channels-last, as train sets up
    module.train()

    def step(index: int) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            loss = module.training_step(batch, index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.trainer.gradient_clip_val or float("inf"))
        optimizer.step()
        module.model.update_ema()

    seconds = []
    for index in range(steps + 2):
        start = time.perf_counter()
        step(index)
        seconds.append(time.perf_counter() - start)
    net = cfg.net.get("_target_", "?").rsplit(".", 1)[-1]
    return {"s_per_step": statistics.median(seconds[2:]), "batch": int(cfg.data.batch_size), "precision": precision,
            "net": f"{net} {sum(p.numel() for p in module.model.net.parameters()) / 1e6:.2f} M",
            "shape": "x".join(str(s) for s in modality.shape)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--only", nargs="+", default=None, help="recipe names (or a part of one) to run")
    parser.add_argument("--extra", nargs="+", default=[], help="overrides added to every recipe")
    args = parser.parse_args()
    chosen = [name for name in RECIPES if args.only is None or any(part in name for part in args.only)]
    rows = []
    for name in chosen:
        result, peak = measure_in_fresh_process(time_recipe, RECIPES[name] + args.extra, args.steps)
        rows.append([name, result["shape"], result["net"], result["batch"], result["precision"],
                     f"{result['s_per_step']:.2f}", f"{result['batch'] / result['s_per_step']:.1f}",
                     f"{peak / 1024:.2f}"])
        print(f"{name}: {rows[-1][5]} s/step, peak {rows[-1][7]} GB", flush=True)
    print(f"\n{torch.get_num_threads()} threads; extra overrides: {' '.join(args.extra) or '(none)'}")
    print_table(["recipe", "item shape", "net", "batch", "precision", "s/step", "items/s", "peak RSS GB"], rows)


if __name__ == "__main__":
    from diffusionkit.allocator import relaunch_with_allocator  # as the diffusionkit command runs

    relaunch_with_allocator([sys.executable, *sys.orig_argv[1:]])
    main()
