"""Embeddings: sinusoidal time step features and class labels with a null class.

Sinusoidal time embeddings as in Ho et al. 2020 (DDPM, after Vaswani et al. 2017); the learned
null class serves classifier-free guidance (Ho & Salimans 2022), whose label dropout is the
class-label conditioner's (:mod:`diffusionkit.nets.conditioners`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal features ``[cos(t f_i), sin(t f_i)]`` of shape ``[B, dim]`` for time steps ``t [B]``.

    ``t`` may be integer indices or continuous floats; frequencies ``f_i`` span
    ``1 .. 1/max_period`` geometrically. An odd ``dim`` is zero-padded.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.reshape(-1, 1).float() * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = nn.functional.pad(emb, (0, 1))
    return emb


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of width ``dim`` -> MLP (Linear, SiLU, Linear) of width ``hidden``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: Tensor) -> Tensor:
        """``t``: ``[B]`` integer or float time steps -> ``[B, hidden]``."""
        return self.mlp(timestep_embedding(t, self.dim).to(self.mlp[0].weight.dtype))


class ClassEmbedder(nn.Module):
    """Learned class embeddings plus a null class at index ``num_classes`` (Ho & Salimans 2022)."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embedding = nn.Embedding(num_classes + 1, dim)

    @property
    def null_index(self) -> int:
        """The label meaning "no class" (unconditional)."""
        return self.num_classes

    def forward(self, labels: Tensor) -> Tensor:
        """``labels``: ``[B]`` integers in ``[0, num_classes]`` -> ``[B, dim]``."""
        if labels.is_floating_point() or labels.is_complex():
            raise ValueError(f"class labels must be integers, got dtype {labels.dtype}")
        if bool(((labels < 0) | (labels > self.num_classes)).any()):
            raise ValueError(
                f"class labels must lie in [0, {self.num_classes}] ({self.num_classes} = null class), "
                f"got values in [{int(labels.min())}, {int(labels.max())}]"
            )
        return self.embedding(labels)

