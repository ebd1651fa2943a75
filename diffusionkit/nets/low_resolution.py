"""The condition of a cascade's super-resolution stage: a lower-resolution version of the data,
with noise conditioning augmentation (Ho et al. 2022, "Cascaded Diffusion Models for High
Fidelity Image Generation", section 3; Saharia et al. 2022, Imagen).

An upsampler is a diffusion model at the full resolution whose input channels are joined by the
low-resolution item, resized back up to the full size. The low-resolution item is corrupted
with Gaussian noise of a random level ``s`` while training (``x_aug = cos(pi s / 2) x + sin(pi s
/ 2) eps``), and ``s`` itself conditions the net (sinusoidal features -> MLP, added to the time
embedding), so that at sampling time the stage can be told how far to trust its input: the base
stage's samples differ from real downsampled data, and a little noise hides the difference.

The values this conditioner passes around are ``[n, channels + 1, *spatial]``: the augmented,
resized-up item and, as a last constant channel, its augmentation level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from diffusionkit.nets.conditioners import CONCAT, Conditioner
from diffusionkit.nets.conditioning import timestep_embedding
from diffusionkit.nets.resampling import downsample, resize

if TYPE_CHECKING:
    from diffusionkit.modality import Modality

def augment(x: Tensor, level: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Variance-preserving Gaussian corruption of ``x [B, ...]`` at ``level [B]`` in [0, 1]."""
    angle = (level * math.pi / 2).view(-1, *(1,) * (x.dim() - 1)).to(x.dtype)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.cos(angle) * x + torch.sin(angle) * noise


class LowResolution(Conditioner):
    """A lower-resolution version of the data, concatenated to the net's input (a cascade's
    super-resolution stage; see the module docstring).

    Args:
        channels: the data's channels (None: the modality's).
        factor: how much lower the resolution is, an int for every spatial axis or one per axis
            (``[1, 2, 2]`` keeps a clip's frames and halves its frames' size).
        max_augment: training draws each item's augmentation level uniformly from ``[0, max_augment]``.
        sample_augment: the level an item given at sampling time is corrupted with.
        drop: the share of training items without it (0: always given).
        features: the width of the level's sinusoidal features.
    """

    kind = CONCAT
    input_hint = "FILE"

    def __init__(self, channels: int | None = None, factor: int | Sequence[int] = 2, max_augment: float = 0.5,
                 sample_augment: float = 0.1, drop: float = 0.0, features: int = 64) -> None:
        super().__init__(drop)
        for name, value in (("max_augment", max_augment), ("sample_augment", sample_augment)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        self.channels = None if channels is None else int(channels)
        self.factor: int | tuple[int, ...] = int(factor) if isinstance(factor, int) else tuple(int(f) for f in factor)
        self.max_augment = float(max_augment)
        self.sample_augment = float(sample_augment)
        self.features = int(features)
        self.level_mlp: nn.Sequential | None = None
        self.degrade = downsample

    @property
    def width(self) -> int:
        if self.channels is None:
            raise RuntimeError("LowResolution: channels=None and use_modality() was never called")
        return self.channels

    def factors(self, rank: int) -> tuple[int, ...]:
        """The factor of each of ``rank`` spatial axes."""
        factors = (self.factor,) * rank if isinstance(self.factor, int) else self.factor
        if len(factors) != rank or min(factors) < 1:
            raise ValueError(f"factor must be a positive int or {rank} positive ints (one per spatial axis), "
                             f"got {self.factor}")
        return factors

    def use_modality(self, modality: Modality) -> None:
        """Take the modality's channels (unless given) and degrade as it does
        (:meth:`Modality.low_resolution`; default: a box filter)."""
        if self.channels is None:
            self.channels = int(modality.shape[0])
        self.degrade = modality.low_resolution

    def bind(self, embedding_dim: int) -> None:
        self.level_mlp = nn.Sequential(nn.Linear(self.features, embedding_dim), nn.SiLU(),
                                       nn.Linear(embedding_dim, embedding_dim))
        nn.init.zeros_(self.level_mlp[2].weight)
        nn.init.zeros_(self.level_mlp[2].bias)

    def values(self, low: Tensor, size: Sequence[int], level: Tensor,
               generator: torch.Generator | None = None) -> Tensor:
        """The values for low-resolution items ``low [n, C, *s]``, at full ``size``, corrupted at ``level [n]``."""
        up = resize(augment(low.float(), level.to(low.device), generator), size)
        return torch.cat([up, level.to(up).view(-1, 1, *(1,) * len(size)).expand(-1, 1, *size)], dim=1)

    def from_batch(self, batch: dict[str, Tensor]) -> Tensor:
        if "x" not in batch:
            raise ValueError("a low-resolution condition is derived from data: it cannot train from a latent cache")
        x = batch["x"]
        low = self.degrade(x, self.factors(x.dim() - 2))
        level = torch.rand(len(x), device=x.device) * self.max_augment
        return self.values(low, x.shape[2:], level)

    def from_low_resolution(self, low: Tensor, size: Sequence[int], generator: torch.Generator | None = None) -> Tensor:
        """Sampling: the values for items ``low [n, C, *s]`` a previous stage made (or a user gave)."""
        level = torch.full((len(low),), self.sample_augment, device=low.device)
        return self.values(low, size, level, generator)

    def read_input(self, text: str, modality: Modality) -> Tensor:
        """A user's file at the full size (it is degraded here) or at the low one."""
        item = modality.load(text)
        factors = self.factors(item.dim() - 1)
        full = tuple(modality.shape[1:])
        low = self.degrade(item[None], factors) if tuple(item.shape[1:]) == full else item[None]
        return self.from_low_resolution(low, full)[0]

    def forward(self, values: Tensor) -> Tensor:
        return values[:, : self.width]

    def pooled(self, values: Tensor) -> Tensor | None:
        if self.level_mlp is None:
            raise RuntimeError("LowResolution.bind(embedding_dim) was never called")
        level = values[:, self.width].reshape(len(values), -1)[:, 0]
        features = timestep_embedding(level.float() * 1000.0, self.features)
        return self.level_mlp(features.to(self.level_mlp[0].weight.dtype))

    def null_value(self, n: int, item_shape: tuple[int, ...], device: torch.device) -> Tensor:
        if self.drop == 0:
            raise ValueError(f"this model is a super-resolution stage trained with its {self.name} always given: "
                             f"pass {self.name}=FILE, or run it after a base model (generate ckpt=BASE,UPSAMPLER)")
        values = torch.zeros((n, self.width + 1, *item_shape[1:]), device=device)
        values[:, self.width] = 1.0  # "pure noise": nothing to go on
        return values
