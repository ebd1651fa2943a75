"""Resampling along every spatial axis of ``[B, C, *spatial]`` batches of rank 1, 2 or 3: block
averages down (a box filter), (bi/tri)linear interpolation up."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

POOLS = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def downsample(x: Tensor, factors: Sequence[int]) -> Tensor:
    """``[B, C, *S]`` -> ``[B, C, *(S / factors)]`` by averaging each block (a box filter)."""
    factors = tuple(int(f) for f in factors)
    if any(s % f for s, f in zip(x.shape[2:], factors)):
        raise ValueError(f"spatial sizes {list(x.shape[2:])} are not multiples of the factors {list(factors)}")
    return POOLS[x.dim() - 2](x, kernel_size=factors, stride=factors)


def resize(x: Tensor, size: Sequence[int]) -> Tensor:
    """``[B, C, *S]`` -> ``[B, C, *size]``, (bi/tri)linear (an axis of the same size is kept as it is)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode=MODES[x.dim() - 2], align_corners=False)
