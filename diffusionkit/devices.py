"""Where and in what precision a command runs its model: ``device=`` and ``precision=``.

``device=auto`` is the first CUDA device where there is one, else the CPU. ``precision=bf16``
runs the network under bfloat16 autocast (weights and the sampler's arithmetic stay float32);
``precision=auto`` is bf16 on a CUDA device that supports it and fp32 elsewhere: on this
project's 2-core CPU, bf16 autocast did not sample the shipped drums starter faster than fp32
(issue 14's notes), so a CPU keeps fp32 unless asked.
"""

from __future__ import annotations

import re

import torch

from diffusionkit.errors import UsageError

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


def resolve_precision(name: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for ``precision=name`` on ``device``; UsageError for an unknown name."""
    if name not in PRECISIONS:
        raise UsageError(f"unknown precision '{name}'; choose precision= {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
