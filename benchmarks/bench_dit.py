"""The Diffusion Transformer beside the U-Net: sizes, FLOPs, speed, and the scaling trend.

    python benchmarks/bench_dit.py                    # the sizes table (seconds)
    python benchmarks/bench_dit.py --scaling          # + train each net on digits, plot loss vs FLOPs
        [--steps 600] [--out benchmarks/results/dit_scaling]   (needs matplotlib: pip install -e ".[bench]")

Sizes: every DiT preset (conf/net/dit*.yaml) and the U-Net of the digits recipe
(experiment=digits_fast: net=unet_small) on digits [1, 32, 32], and the video nets on sprites
[1, 16, 32, 32] (experiment=sprites_fast's U-Net, experiment=sprites_dit's DiT): parameters, forward FLOPs per sample (``torch.utils.flop_counter``; a training
step is about 3x), and the seconds of a training step (batch 64 for digits, 16 for video; bf16
autocast where the CPU computes bf16 natively, as the recipes train, else fp32; forward + loss +
backward + AdamW, median of 5 after 2 warm-up steps).

Scaling: ``diffusionkit train modality=image data=digits experiment=digits_fast net=<net>`` for
``--steps`` steps each, the held-out denoising loss (``val/loss``, fixed noise) every 50 steps,
plotted against the training FLOPs spent so far (steps x batch x 3 x forward FLOPs): the DiT
scaling trend of Peebles & Xie 2023 (figure 1), made visible on this machine.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_precision, print_table, train_step  # noqa: E402

DIGITS = ["modality=image", "data=digits", "experiment=digits_fast"]
VIDEO = ["modality=video", "data=sprites"]
#: sprites_dit's net without U-ViT's long skips and final convolution (the factorised rows' nets)
WITHOUT_UVIT = ["net.long_skips=false", "net.final_conv=false"]
#: (name, recipe overrides, batch)
NETS = [
    ("unet_small (digits_fast)", [*DIGITS], 64),
    ("dit_tiny", [*DIGITS, "net=dit_tiny"], 64),
    ("dit", [*DIGITS, "net=dit"], 64),
    ("dit_base", [*DIGITS, "net=dit_base"], 64),
    ("unet_sprites (sprites_fast)", [*VIDEO, "experiment=sprites_fast"], 16),
    ("dit, [2, 4, 4] patches (sprites_dit)", [*VIDEO, "experiment=sprites_dit"], 16),
    ("dit_factorized, [1, 4, 4] patches", [*VIDEO, "experiment=sprites_dit", "net=dit_factorized",
                                           "net.patch_size=[1,4,4]", *WITHOUT_UVIT], 16),
    ("dit_factorized, [1, 2, 2] patches", [*VIDEO, "experiment=sprites_dit", "net=dit_factorized",
                                           "net.patch_size=[1,2,2]", *WITHOUT_UVIT], 16),
]
SCALING = ["unet_small (digits_fast)", "dit_tiny", "dit", "dit_base"]


def build(overrides: list[str]):
    from diffusionkit.build import build_diffusion_model, build_modality
    from diffusionkit.config import compose_config

    cfg = compose_config("train", overrides)
    modality = build_modality(cfg)
    torch.manual_seed(0)
    model = build_diffusion_model(cfg, modality, num_classes=10)
    return model, tuple(modality.shape)


def forward_flops(net: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on one item (class label given)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.randn(1, *shape), torch.tensor([500]), label=torch.tensor([0]))
    return counter.get_total_flops()


def train_step_seconds(model, shape: tuple[int, ...], batch: int, repeats: int = 5) -> float:
    optimizer = torch.optim.AdamW(model.net.parameters(), lr=1e-4)
    data = {"x": torch.randn(batch, *shape), "label": torch.randint(0, 10, (batch,))}
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        train_step(model, optimizer, data, cpu_precision())
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def sizes_table() -> dict[str, float]:
    rows, flops = [], {}
    for name, overrides, batch in NETS:
        model, shape = build(overrides)
        flops[name] = forward_flops(model.net, shape)
        params = sum(p.numel() for p in model.net.parameters())
        step = train_step_seconds(model, shape, batch)
        rows.append([name, "x".join(map(str, shape)), f"{params / 1e6:.2f} M", f"{flops[name] / 1e9:.3f}",
                     str(batch), f"{step:.3f}", f"{batch / step:.0f}"])
        print(f"  measured {name}", file=sys.stderr)
    print_table(["net", "item", "parameters", "forward GFLOP/item", "batch", "s/train step", "items/s"], rows)
    return flops


def val_curve(run: Path) -> list[tuple[int, float]]:
    """(step, val/loss) from a run's CSV log."""
    rows = csv.DictReader((run / "csv" / "metrics.csv").open())
    return [(int(r["step"]), float(r["val/loss"])) for r in rows if r.get("val/loss")]


def scaling(flops: dict[str, float], steps: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diffusionkit.commands import quiet_libraries, run_command

    quiet_libraries()
    out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    for name, overrides, batch in NETS:
        if name not in SCALING:
            continue
        run = out / name.split()[0]
        started = time.perf_counter()
        if not (run / "model.safetensors").exists():
            run_command("train", [*overrides, f"trainer.max_steps={steps}", "trainer.val_check_interval=50",
                                  "samples.every_n_steps=100000", "checkpoint.every_n_train_steps=100000",
                                  "logger=csv", "seed=0", f"out={run}"])
        seconds = time.perf_counter() - started
        curve = val_curve(run)
        per_step = 3 * flops[name] * batch
        curves[name] = [(s * per_step, loss) for s, loss in curve]
        rows.append([name, f"{curve[-1][1]:.4f}", f"{steps * per_step / 1e12:.1f}", f"{seconds:.0f}"])
    print_table(["net", f"val loss at {steps} steps", "training TFLOP", "train s (0 if reused)"], rows)
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, points in curves.items():
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=name)
    axes.set_xscale("log")
    axes.set_xlabel("training FLOPs")
    axes.set_ylabel("held-out denoising loss (val/loss)")
    axes.set_title(f"digits, {steps} steps each (experiment=digits_fast)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(out / "dit_scaling.png", dpi=120)
    print(f"plot: {out / 'dit_scaling.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scaling", action="store_true", help="also train each digits net and plot loss vs FLOPs")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/dit_scaling"))
    args = parser.parse_args()
    flops = sizes_table()
    if args.scaling:
        scaling(flops, args.steps, args.out)


if __name__ == "__main__":
    main()
