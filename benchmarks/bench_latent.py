"""Latent versus pixel diffusion at 64x64 RGB on this CPU, and first-stage reconstruction quality.

    python benchmarks/bench_latent.py [--size 64] [--batch 32] [--steps 10] [--n 8] [--psnr]

Speed: the same U-Net config (net=unet, same width) in pixel space [3, 64, 64] and in the f=4
latent space [4, 16, 16] of first_stage=kl_f4. A training step is forward + backward + AdamW;
the latent step includes encoding the batch (without a latent cache) and is also timed on
pre-encoded latents (with one). Sampling is 20 DPM-Solver++ steps with CFG, decoding included.
Weights are untrained: speed does not depend on them.

``--psnr`` also trains the digits autoencoder of ``experiment=digits_autoencoder`` (f=4) through
``diffusionkit train`` and reports its held-out PSNR.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import torch
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402


def build(size: int, latent: bool):
    from diffusionkit.config import compose_config
    from diffusionkit.latent import LatentSpace
    from diffusionkit.build import build_diffusion_model, build_modality

    cfg = compose_config("train", ["modality=image", "data=shapes", f"modality.size={size}"])
    modality = build_modality(cfg)
    if latent:
        from omegaconf import open_dict

        with open_dict(cfg):
            cfg.autoencoder.net = cfg.first_stage.net
            cfg.autoencoder.scale_factor = 1.0
    module = build_diffusion_model(cfg, modality, num_classes=4)
    assert isinstance(module.latent, LatentSpace) == latent
    return module, modality


def time_train(module, batch: dict, steps: int) -> float:
    optimizer = torch.optim.AdamW(module.net.parameters(), lr=1e-4)
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        loss = module.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def time_sample(module, n: int) -> float:
    labels = torch.arange(n) % module.num_classes
    module.sample(1, labels[:1], steps=2, guidance_scale=2.0)  # warm-up
    start = time.perf_counter()
    module.sample(n, labels, steps=20, guidance_scale=2.0, generator=torch.Generator().manual_seed(0))
    return (time.perf_counter() - start) / n


def digits_psnr() -> tuple[float, float]:
    """Train the f=4 digits autoencoder; return (held-out PSNR in dB, training seconds)."""
    from diffusionkit.commands import quiet_libraries, run_command

    quiet_libraries()
    with TemporaryDirectory() as tmp:
        start = time.perf_counter()
        bundle = run_command("train", ["modality=image", "data=digits", "experiment=digits_autoencoder",
                                       "+trainer.enable_progress_bar=false", f"out={tmp}/run"])
        seconds = time.perf_counter() - start
        with safe_open(str(bundle), framework="pt") as f:
            return float(f.metadata()["held_out_psnr_db"]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--n", type=int, default=8, help="samples per sampling measurement")
    parser.add_argument("--psnr", action="store_true", help="also train the digits autoencoder (about 1-2 min)")
    args = parser.parse_args()
    torch.manual_seed(0)

    pixel, modality = build(args.size, latent=False)
    latent, _ = build(args.size, latent=True)
    x = torch.rand(args.batch, *modality.shape) * 2 - 1
    labels = torch.arange(args.batch) % 4
    t_pixel = time_train(pixel, {"x": x, "label": labels}, args.steps)
    t_latent = time_train(latent, {"x": x, "label": labels}, args.steps)
    t_cached = time_train(latent, {"z": latent.to_diffusion_space(x), "label": labels}, args.steps)
    s_pixel, s_latent = time_sample(pixel.eval(), args.n), time_sample(latent.eval(), args.n)
    rows = [
        ("train step, pixel space", f"{t_pixel * 1000:.0f} ms", "1.0x"),
        ("train step, latent f=4 (encoding each batch)", f"{t_latent * 1000:.0f} ms", f"{t_pixel / t_latent:.1f}x"),
        ("train step, latent f=4 (latent cache)", f"{t_cached * 1000:.0f} ms", f"{t_pixel / t_cached:.1f}x"),
        ("sample, pixel space", f"{s_pixel * 1000:.0f} ms/sample", "1.0x"),
        ("sample, latent f=4 (decoding included)", f"{s_latent * 1000:.0f} ms/sample", f"{s_pixel / s_latent:.1f}x"),
    ]
    if args.psnr:
        value, seconds = digits_psnr()
        rows.append(("held-out PSNR, digits autoencoder f=4", f"{value:.1f} dB", f"trained in {seconds:.0f} s"))
    print(f"{args.size}x{args.size} RGB, net=unet (same width), batch {args.batch}, "
          f"torch threads {torch.get_num_threads()}")
    print_table(("measurement", "value", "speed-up"), rows)


if __name__ == "__main__":
    main()
