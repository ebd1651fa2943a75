"""Patching: fold non-overlapping patches of the spatial axes into channels, and back.

A U-Net that works on ``[B, C * prod(p), *(S / p)]`` instead of ``[B, C, *S]`` spends its
convolutions at a lower resolution from its first layer on: the "patching" input and output of
simple diffusion (Hoogeboom et al. 2023, "simple diffusion: End-to-end diffusion for high
resolution images"). Any rank; a patch size of 1 leaves that axis alone (e.g. ``(1, 2, 2)`` keeps
the frames of ``[B, C, T, H, W]`` and halves H and W).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


def patch_sizes(patch_size: int | Sequence[int], rank: int) -> tuple[int, ...]:
    """``patch_size`` as one positive int per spatial axis (an int applies to every axis)."""
    sizes = (int(patch_size),) * rank if isinstance(patch_size, int) else tuple(int(p) for p in patch_size)
    if len(sizes) != rank or min(sizes) < 1:
        raise ValueError(f"patch_size must be a positive int or {rank} positive ints (one per spatial axis), "
                         f"got {patch_size}")
    return sizes


def fold_patches(x: Tensor, sizes: Sequence[int]) -> Tensor:
    """``[B, C, *S]`` -> ``[B, C * prod(sizes), *(S / sizes)]``; each ``S`` must divide by its size."""
    b, c, *spatial = x.shape
    if any(s % p for s, p in zip(spatial, sizes)):
        raise ValueError(f"spatial sizes {spatial} are not multiples of the patch size {list(sizes)}")
    rank = len(spatial)
    split = [d for s, p in zip(spatial, sizes) for d in (s // p, p)]  # [n0, p0, n1, p1, ...]
    x = x.reshape(b, c, *split)
    # -> [B, C, p0, p1, ..., n0, n1, ...]
    x = x.permute(0, 1, *(3 + 2 * i for i in range(rank)), *(2 + 2 * i for i in range(rank)))
    return x.reshape(b, -1, *(s // p for s, p in zip(spatial, sizes)))


def unfold_patches(x: Tensor, sizes: Sequence[int]) -> Tensor:
    """The inverse of :func:`fold_patches`: ``[B, C * prod(sizes), *N]`` -> ``[B, C, *(N * sizes)]``."""
    b, folded, *grid = x.shape
    rank = len(grid)
    x = x.reshape(b, -1, *sizes, *grid)  # [B, C, p0, p1, ..., n0, n1, ...]
    # -> [B, C, n0, p0, n1, p1, ...]
    x = x.permute(0, 1, *(d for i in range(rank) for d in (2 + rank + i, 2 + i)))
    return x.reshape(b, x.shape[1], *(n * p for n, p in zip(grid, sizes)))
