"""Full 3-D vs factorised space-time U-Net (``net.factorized``) at equal width, on this CPU.

    python benchmarks/bench_spacetime.py [--shape 8 1 16 32 32] [--steps 10] [--warmup 2] [--bf16]
        [--model-channels 32] [--channel-mult 1 2 2] [--num-res-blocks 1] [--attention-levels 2]
        [--no-temporal-downsample] [--patch-size 1 2 2]

Input ``[B, C, T, H, W]`` (rank 3, first spatial axis = time). For each variant, prints a
markdown table row with:
- parameters;
- training step time: forward, MSE loss to a random target, backward and an AdamW step
  (median of ``--steps`` after ``--warmup`` untimed steps);
- forward-only time under ``torch.no_grad`` (median likewise);
- peak resident memory of the training and of the forward-only measurement (each runs in
  its own fresh process).
``--bf16`` runs the forward passes under ``torch.autocast("cpu", dtype=torch.bfloat16)``.
Timings depend on the thread count (``OMP_NUM_THREADS``) and on what else the machine runs.
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

VARIANTS = {"full 3-D": False, "factorised (2+1)-D": True}



def build(args: argparse.Namespace, factorized: bool) -> torch.nn.Module:
    from diffusionkit.nets import UNet

    return UNet(3, args.shape[1], model_channels=args.model_channels, channel_mult=args.channel_mult,
                num_res_blocks=args.num_res_blocks, attention_levels=args.attention_levels,
                num_heads=args.num_heads, factorized=factorized,
                temporal_downsample=not args.no_temporal_downsample, patch_size=args.patch_size)


def _timed(fn, warmup: int, steps: int) -> float:
    """Median milliseconds of ``fn()`` over ``steps`` calls after ``warmup`` untimed ones."""
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        fn()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def train_step_ms(args: argparse.Namespace, factorized: bool) -> tuple[float, int]:
    net = build(args, factorized).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x, target = torch.randn(*args.shape), torch.randn(*args.shape)
    t = torch.rand(args.shape[0])

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            out = net(x, t)
        loss = torch.nn.functional.mse_loss(out.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return _timed(step, args.warmup, args.steps), sum(p.numel() for p in net.parameters())


def forward_ms(args: argparse.Namespace, factorized: bool) -> tuple[float, int]:
    net = build(args, factorized).eval()
    x, t = torch.randn(*args.shape), torch.rand(args.shape[0])

    @torch.no_grad()
    def forward() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            net(x, t)

    return _timed(forward, args.warmup, args.steps), sum(p.numel() for p in net.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=5, default=[8, 1, 16, 32, 32], metavar=("B", "C", "T", "H", "W"))
    parser.add_argument("--steps", type=int, default=10, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on the CPU")
    parser.add_argument("--model-channels", type=int, default=32)
    parser.add_argument("--channel-mult", type=int, nargs="+", default=[1, 2, 2])
    parser.add_argument("--num-res-blocks", type=int, default=1)
    parser.add_argument("--attention-levels", type=int, nargs="*", default=None,
                        help="default: the lowest level only")
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--no-temporal-downsample", action="store_true",
                        help="down/upsample by (1, 2, 2), keeping T (both variants)")
    parser.add_argument("--patch-size", type=int, nargs=3, default=[1, 1, 1], metavar=("PT", "PH", "PW"),
                        help="fold patches into channels before the first layer (both variants)")
    args = parser.parse_args()
    if args.attention_levels is None:
        args.attention_levels = [len(args.channel_mult) - 1]

    rows, results = [], {}
    for name, factorized in VARIANTS.items():
        (train_ms, params), train_mem = measure_in_fresh_process(train_step_ms, args, factorized)
        (fwd_ms, _), fwd_mem = measure_in_fresh_process(forward_ms, args, factorized)
        results[name] = (params, train_ms, fwd_ms, train_mem, fwd_mem)
        rows.append((name, f"{params / 1e6:.2f} M", f"{train_ms:.0f}", f"{fwd_ms:.0f}",
                     f"{train_mem:.0f}", f"{fwd_mem:.0f}"))
    full, fact = results["full 3-D"], results["factorised (2+1)-D"]
    rows.append(("factorised / full", *(f"{b / a:.2f}" for a, b in zip(full, fact))))

    print(f"U-Net, input {args.shape} [B, C, T, H, W], model_channels {args.model_channels}, "
          f"channel_mult {args.channel_mult}, {args.num_res_blocks} res block(s), attention at levels "
          f"{args.attention_levels}, temporal_downsample {not args.no_temporal_downsample}, "
          f"patch_size {args.patch_size}, "
          f"{'bf16 autocast' if args.bf16 else 'fp32'}, torch threads {torch.get_num_threads()}, "
          f"median of {args.steps} after {args.warmup} warm-up")
    print_table(("net", "parameters", "train step (ms)", "forward (ms)", "peak RSS train (MiB)",
                 "peak RSS forward (MiB)"), rows)


if __name__ == "__main__":
    main()
