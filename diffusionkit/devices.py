"""Where and in what precision a command runs its model: ``device=`` and ``precision=``.

``device=auto`` is the first CUDA device where there is one, else the CPU. ``precision=bf16``
runs the network under bfloat16 autocast (weights and the sampler's arithmetic stay float32);
``precision=auto`` is bf16 where the device computes it natively (a CUDA device that supports
it; a CPU with AVX512-BF16 or AMX tiles) and fp32 elsewhere, where bf16 is emulated and slower.
On this project's 2-core Xeon (AMX) bf16 autocast trains a 64x64 U-Net 1.8x faster than fp32
(benchmarks/bench_vs_diffusers.py). 2-D and 3-D nets sample channels-last in bf16, and on a CPU
in fp32 too (:func:`prepare_to_sample`): 0.32 -> 0.27 s per 64x64 bf16 sample there; in fp32 on a 2-core
AVX2 EPYC the sampling forward of a batch of 16 takes 0.82-0.90x its contiguous time (the drum
starter 550 -> 436 ms, the image default 128 -> 107 ms, the video default 2.73 -> 2.46 s).
"""

from __future__ import annotations

import re

import torch

from diffusionkit.errors import UsageError
from diffusionkit.nets.layers import CHANNELS_LAST

PRECISIONS = ("auto", "fp32", "bf16")
#: the autocast dtype of each resolved precision (None: no autocast)
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def device_problem(name: object) -> str | None:
    """Why ``device=name`` is not a device name diffusionkit takes (None: it is one)."""
    if isinstance(name, str) and DEVICE_PATTERN.fullmatch(name):
        return None
    return f"unknown device '{name}'; choose device= {DEVICE_CHOICES}"


def resolve_device(name: str | torch.device) -> torch.device:
    """The device ``name`` stands for (``auto``: CUDA where present, else CPU); UsageError in one
    line for an unknown name or a CUDA device this machine does not have."""
    if isinstance(name, torch.device):
        return name
    problem = device_problem(name)
    if problem:
        raise UsageError(problem)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            have = f"it has {count} (cuda:0 to cuda:{count - 1})" if count else "it has none"
            raise UsageError(f"device={name}: this machine has no such CUDA device ({have}); use device=auto or "
                             f"device=cpu")
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (not by emulation, which is slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return any(bool(getattr(torch.cpu, probe, lambda: False)()) for probe in
                   ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for ``precision=name`` on ``device``; UsageError for an unknown name."""
    if name not in PRECISIONS:
        raise UsageError(f"unknown precision '{name}'; choose precision= {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    return "bf16" if native_bf16(device) else "fp32"


def to_channels_last(module: torch.nn.Module, spatial_rank: int) -> int:
    """Store the convolution weights of a 2-D or 3-D model channels-last (NHWC / NDHWC), the
    layout oneDNN's bf16 kernels and cuDNN's tensor cores prefer; activations follow the
    weights. Returns the number of tensors converted (0 for 1-D models, which have no such
    layout). On a CPU it pays off in training too once GroupNorm normalises a contiguous copy
    (:class:`diffusionkit.nets.layers.GroupNorm`; its channels-last backward is slower)."""
    memory_format = CHANNELS_LAST.get(spatial_rank)
    if memory_format is None:
        return 0
    converted = 0
    for param in module.parameters():
        if param.dim() == spatial_rank + 2:
            param.data = param.data.contiguous(memory_format=memory_format)
            converted += 1
    return converted


def prepare_to_sample(model: torch.nn.Module, precision: str, spatial_rank: int) -> None:
    """Set a DiffusionModel up to sample in a resolved ``precision``: the autocast dtype its
    denoiser runs the net under, and its 2-D / 3-D convolution weights channels-last in bf16,
    and on a CPU in fp32 too (measured faster there; fp32 on a GPU is left as it was)."""
    model.autocast_dtype = AUTOCAST_DTYPES[precision]
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    if model.autocast_dtype is not None or on_cpu:
        to_channels_last(model, spatial_rank)
