"""Speed and memory of the default image model (net=unet, 32x32 RGB, 4 classes) on this CPU.

    python benchmarks/bench_image.py [--steps 20] [--batch 64] [--n 16] [override ...]

Prints a markdown table:
- train throughput (samples/s) through Lightning (``diffusionkit train``'s Trainer, with EMA,
  gradient clipping and the LR schedule) and through a plain PyTorch loop doing the same work
  on the same module and DataLoader, and their ratio;
- sampling time per sample for each sampler (20 steps, classifier-free guidance 2.0);
- peak resident memory of each measurement (each runs in its own fresh process).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import build_image_run, measure_in_fresh_process, print_table  # noqa: E402

from diffusionkit.training.trainer_options import lightning_precision  # noqa: E402


def train_lightning(args: argparse.Namespace) -> float:
    import lightning.pytorch as pl

    module, datamodule, cfg = build_image_run(args.batch, args.extra)
    times: list[float] = []

    class Clock(pl.Callback):
        def on_train_batch_end(self, *a) -> None:
            times.append(time.perf_counter())

    trainer = pl.Trainer(max_steps=args.warmup + args.steps, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         gradient_clip_val=cfg.trainer.gradient_clip_val,
                         precision=lightning_precision(cfg.trainer.precision, "cpu"), accelerator="cpu",
                         callbacks=[Clock()])
    trainer.fit(module, datamodule=datamodule)
    return args.batch * args.steps / (times[-1] - times[args.warmup - 1])


def train_plain(args: argparse.Namespace) -> float:
    module, datamodule, cfg = build_image_run(args.batch, args.extra)
    datamodule.setup("fit")
    optimizer_cfg = module.configure_optimizers()
    optimizer, scheduler = optimizer_cfg["optimizer"], optimizer_cfg["lr_scheduler"]["scheduler"]
    module.train()
    model = module.model
    batches = (batch for _ in itertools.count() for batch in datamodule.train_dataloader())  # epochs
    bf16 = lightning_precision(cfg.trainer.precision, "cpu") == "bf16-mixed"
    start = 0.0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            start = time.perf_counter()
        batch = next(batches)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.net.parameters(), cfg.trainer.gradient_clip_val)
        optimizer.step()
        scheduler.step()
        model.update_ema()
    return args.batch * args.steps / (time.perf_counter() - start)


def sample(args: argparse.Namespace, sampler: str) -> float:
    module, _, cfg = build_image_run(args.batch, args.extra)
    module = module.model.eval()
    labels = torch.arange(args.n) % module.num_classes
    spacing = "karras" if sampler in ("dpmpp_2m", "euler", "heun") else "trailing"
    kwargs = dict(sampler=sampler, steps=20, spacing=spacing, guidance_scale=2.0)
    module.sample(2, labels[:2], **kwargs)  # warm-up
    start = time.perf_counter()
    module.sample(args.n, labels, generator=torch.Generator().manual_seed(0), **kwargs)
    return (time.perf_counter() - start) / args.n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--n", type=int, default=16, help="samples per sampling measurement")
    parser.add_argument("--samplers", nargs="+", default=["dpmpp_2m", "ddim", "ddpm", "euler", "heun"])
    parser.add_argument("extra", nargs="*", help="extra train overrides, e.g. net=unet_small")
    args = parser.parse_args()

    rows = []
    lightning_rate, lightning_mem = measure_in_fresh_process(train_lightning, args)
    plain_rate, plain_mem = measure_in_fresh_process(train_plain, args)
    rows.append(("train, Lightning", f"{lightning_rate:.1f} samples/s", f"{lightning_mem:.0f}"))
    rows.append(("train, plain PyTorch loop", f"{plain_rate:.1f} samples/s", f"{plain_mem:.0f}"))
    rows.append(("Lightning / plain", f"{lightning_rate / plain_rate:.2f}", ""))
    for sampler in args.samplers:
        seconds, mem = measure_in_fresh_process(sample, args, sampler)
        rows.append((f"sample, {sampler} (20 steps, CFG)", f"{seconds * 1000:.0f} ms/sample", f"{mem:.0f}"))
    print(f"default image model, 32x32, batch {args.batch}, torch threads {torch.get_num_threads()}, "
          f"overrides: {' '.join(args.extra) or '-'}")
    print_table(("measurement", "value", "peak RSS (MiB)"), rows)


if __name__ == "__main__":
    main()
