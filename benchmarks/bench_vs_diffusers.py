"""diffusionkit beside diffusers on the same U-Net work: training steps and DPM-Solver++ sampling.

    pip install -c constraints.txt -e ".[bench]"        # diffusers (never a runtime dependency)
    python benchmarks/bench_vs_diffusers.py [--sizes 32 64] [--batch 32] [--repeats 5]
                                            [--precision auto|fp32|bf16] [--nchw-training] [--nchw-sampling]
                                            [--math-attention]
                                            [--json FILE]

The same work on both sides: a 3-level U-Net (32/64/128 channels, 2 residual blocks per level,
self-attention at the lowest level), 1 input channel. diffusionkit's ``UNet`` runs its default
fast path (``precision=auto``: bf16 autocast where the processor has native bf16, see
:mod:`diffusionkit.devices`; the allocator the ``diffusionkit`` command preloads, see
:mod:`diffusionkit.allocator`; channels-last convolution weights and activations, as
``trainer.channels_last=true`` sets up), diffusers' ``UNet2DModel`` runs eager fp32 as its scripts do on a
CPU. Both sides are timed interleaved (one step of each, in turn) in one process so that machine
noise hits both, median of ``--repeats`` after two warm-up steps:

- training: forward + MSE + backward + AdamW on a batch of ``--batch``, at every ``--sizes``;
- sampling: ``--sample-batch`` items at 64x64, DPM-Solver++(2M) 20 steps, no gradients
  (diffusionkit: ``DiffusionModel.sample``; diffusers: ``DPMSolverMultistepScheduler``).

FLOPs are counted by ``torch.utils.flop_counter`` on one training step (forward + backward).
``--json FILE`` writes the figures, among them ``train_ratio_32``, ``train_ratio_64``
(diffusionkit samples/s over diffusers fp32 samples/s) and ``sample_s_per_sample_64``.
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mib, print_table  # noqa: E402

CHANNELS = (32, 64, 128)


def diffusionkit_net() -> torch.nn.Module:
    from diffusionkit.nets.unet import UNet

    return UNet(2, 1, model_channels=CHANNELS[0], channel_mult=[c // CHANNELS[0] for c in CHANNELS],
                num_res_blocks=2, attention_levels=[len(CHANNELS) - 1], num_heads=4)


def diffusers_net(size: int) -> torch.nn.Module:
    try:
        from diffusers import UNet2DModel
    except ImportError:
        raise SystemExit('bench_vs_diffusers needs diffusers: pip install -c constraints.txt -e ".[bench]"') from None
    return UNet2DModel(sample_size=size, in_channels=1, out_channels=1, block_out_channels=CHANNELS,
                       layers_per_block=2, down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))


class TrainStep:
    """One optimisation step of a net on a fixed batch (the data pipeline is not timed)."""

    def __init__(self, net: torch.nn.Module, size: int, batch: int, autocast: torch.dtype | None,
                 unwrap: Callable = lambda out: out, math_attention: bool = False) -> None:
        self.net, self.autocast, self.unwrap = net, autocast, unwrap
        # SDPA's math fallback: where self-attention went before its heads were laid out for the fused kernel
        self.attention = (lambda: sdpa_kernel(SDPBackend.MATH)) if math_attention else nullcontext
        self.optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, 1, size, size, generator=generator)
        self.t = torch.randint(0, 1000, (batch,), generator=generator)

    def __call__(self) -> None:
        with torch.autocast("cpu", dtype=self.autocast or torch.bfloat16, enabled=self.autocast is not None), \
                self.attention():
            loss = F.mse_loss(self.unwrap(self.net(self.x, self.t)).float(), self.x)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def flops(self) -> int:
        counter = FlopCounterMode(display=False)
        with counter:
            self()
        return counter.get_total_flops()


def interleaved(steps: dict[str, Callable[[], None]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each step, the steps called in turn so that noise hits all alike."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def diffusionkit_sampler(size: int, n: int, precision: str, channels_last: bool = True) -> Callable[[], None]:
    """``DiffusionModel.sample`` of the same net: DPM-Solver++(2M), 20 Karras steps, set up as
    ``load_model`` sets a bundle up (``channels_last=False`` undoes its channels-last weights)."""
    from diffusionkit.devices import prepare_to_sample
    from diffusionkit.diffusion.model import DiffusionModel
    from diffusionkit.diffusion.schedules import NoiseSchedule

    model = DiffusionModel(diffusionkit_net(), NoiseSchedule("linear", 1000), sample_shape=(1, size, size), ema=False)
    prepare_to_sample(model.eval(), precision, spatial_rank=2)  # as load_model does
    if not channels_last:
        for param in model.parameters():
            param.data = param.data.contiguous()
    generator = torch.Generator()
    return lambda: model.sample(n, sampler="dpmpp_2m", steps=20, generator=generator.manual_seed(0))


def diffusers_sampler(size: int, n: int) -> Callable[[], None]:
    """diffusers' DPM-Solver++ multistep scheduler over UNet2DModel, 20 steps, eager fp32."""
    from diffusers import DPMSolverMultistepScheduler

    net = diffusers_net(size).eval()
    scheduler = DPMSolverMultistepScheduler(num_train_timesteps=1000, algorithm_type="dpmsolver++",
                                            solver_order=2, use_karras_sigmas=True)

    @torch.no_grad()
    def sample() -> None:
        scheduler.set_timesteps(20)
        x = torch.randn(n, 1, size, size, generator=torch.Generator().manual_seed(0))
        for t in scheduler.timesteps:
            x = scheduler.step(net(x, t).sample, t, x).prev_sample

    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sample-batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--skip-sampling", action="store_true")
    parser.add_argument("--nchw-training", action="store_true",
                        help="train without channels-last weights (trainer.channels_last=false, a lever)")
    parser.add_argument("--nchw-sampling", action="store_true", help="sample without channels-last weights (a lever)")
    parser.add_argument("--math-attention", action="store_true",
                        help="diffusionkit's attention through SDPA's math fallback (a lever)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from diffusionkit.allocator import preloaded_allocator
    from diffusionkit.devices import AUTOCAST_DTYPES, resolve_precision, to_channels_last

    precision = resolve_precision(args.precision, torch.device("cpu"))
    autocast = AUTOCAST_DTYPES[precision]
    torch.manual_seed(0)
    results: dict[str, float | str] = {"precision": precision, "allocator": preloaded_allocator() or "system",
                                       "threads": torch.get_num_threads(), "batch": args.batch}
    rows = []
    for size in args.sizes:
        net = diffusionkit_net()
        if not args.nchw_training:
            to_channels_last(net, spatial_rank=2)
        ours = TrainStep(net, size, args.batch, autocast, math_attention=args.math_attention)
        theirs = TrainStep(diffusers_net(size), size, args.batch, None, unwrap=lambda out: out.sample)
        flops = {"diffusionkit": ours.flops(), "diffusers": theirs.flops()}
        seconds = interleaved({"diffusionkit": ours, "diffusers": theirs}, args.repeats)
        for name, label in (("diffusers", "diffusers fp32 eager"), ("diffusionkit", f"diffusionkit {precision}")):
            params = sum(p.numel() for p in (ours if name == "diffusionkit" else theirs).net.parameters())
            rows.append([f"{size}x{size}", label, f"{params / 1e6:.2f} M", f"{flops[name] / 1e9:.0f}",
                         f"{seconds[name]:.3f}", f"{args.batch / seconds[name]:.1f}",
                         f"{flops[name] / seconds[name] / 1e9:.0f}", f"{seconds['diffusers'] / seconds[name]:.2f}",
                         f"{peak_rss_mib():.0f}"])
        results[f"train_ratio_{size}"] = round(seconds["diffusers"] / seconds["diffusionkit"], 3)
        results[f"train_s_per_step_{size}"] = round(seconds["diffusionkit"], 4)
        results[f"diffusers_train_s_per_step_{size}"] = round(seconds["diffusers"], 4)
        results[f"train_gflop_per_step_{size}"] = round(flops["diffusionkit"] / 1e9, 1)
        results[f"diffusers_train_gflop_per_step_{size}"] = round(flops["diffusers"] / 1e9, 1)
    print(f"training: batch {args.batch}, {torch.get_num_threads()} threads, allocator {results['allocator']}, "
          f"median of {args.repeats}, interleaved")
    print_table(["size", "side", "params", "GFLOP/step", "s/step", "samples/s", "effective GF/s",
                 "vs diffusers", "peak RSS MiB (process)"], rows)

    if not args.skip_sampling:
        size, n = 64, args.sample_batch
        seconds = interleaved({"diffusionkit": diffusionkit_sampler(size, n, precision, not args.nchw_sampling),
                               "diffusers": diffusers_sampler(size, n)}, max(3, args.repeats // 2), warmup=1)
        print(f"\nsampling: {n} items at {size}x{size}, DPM-Solver++(2M) 20 steps, no CFG")
        print_table(["side", "s/sample", "steps/s (batch of n)", "vs diffusers"],
                    [[label, f"{seconds[name] / n:.3f}", f"{20 / seconds[name]:.2f}",
                      f"{seconds['diffusers'] / seconds[name]:.2f}"]
                     for name, label in (("diffusers", "diffusers fp32 eager"),
                                         ("diffusionkit", f"diffusionkit {precision}"))])
        results["sample_s_per_sample_64"] = round(seconds["diffusionkit"] / n, 4)
        results["diffusers_sample_s_per_sample_64"] = round(seconds["diffusers"] / n, 4)
    results["peak_rss_mib"] = round(peak_rss_mib())
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    from diffusionkit.allocator import relaunch_with_allocator  # as the diffusionkit command runs

    relaunch_with_allocator([sys.executable, *sys.orig_argv[1:]])
    main()
