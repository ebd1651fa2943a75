"""Noise priors: the distribution of the forward process's ``eps``.

Every draw of noise (training targets, the sampling start, SDEdit starts, inpainting and the
fresh noise of ancestral samplers) goes through one prior, so a model trained on a prior is
also sampled with it. Each prior has unit variance per element, so schedules, sigmas and
losses need no change.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


class GaussianNoise:
    """Independent standard normal noise (Ho et al. 2020): the default prior."""

    def sample(
        self,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """Noise of ``shape`` [B, C, *spatial], drawn on the generator's device (so a seed gives the
        same noise wherever it is used), then moved to ``device``."""
        draw_on = generator.device if generator is not None else device
        return self._draw(tuple(shape), generator, draw_on, dtype).to(device)

    def check(self, item_shape: Sequence[int]) -> None:
        """Raise ValueError if this prior cannot draw noise for items of ``item_shape`` [C, *spatial]."""

    def like(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Noise shaped like ``x``, on its device and dtype."""
        return self.sample(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    def _draw(self, shape: tuple[int, ...], generator: torch.Generator | None,
              device: torch.device | str | None, dtype: torch.dtype | None) -> Tensor:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MixedNoise(GaussianNoise):
    """The mixed noise model of Ge et al. 2023 ("Preserve Your Own Correlation: A Noise Prior
    for Video Diffusion Models", eq. 4): ``eps = sqrt(r) eps_shared + sqrt(1 - r) eps_own``,
    where ``eps_shared`` is one draw repeated along ``shared_axes`` (spatial axes, 0-based:
    axis 0 of a [C, T, H, W] item is time) and ``r = shared_fraction`` of the variance.

    Noise correlated along an axis whose data is redundant (the frames of a clip) leaves the
    denoiser's leftover error correlated there too: less flicker from frame to frame.
    """

    def __init__(self, shared_fraction: float = 0.5, shared_axes: Sequence[int] = (0,)) -> None:
        if not 0.0 <= shared_fraction <= 1.0:
            raise ValueError(f"shared_fraction must be in [0, 1], got {shared_fraction}")
        axes = tuple(int(a) for a in shared_axes)
        if not axes or min(axes) < 0 or len(set(axes)) != len(axes):
            raise ValueError(f"shared_axes must be distinct spatial axes (0, 1, ...), got {list(shared_axes)}")
        self.shared_fraction = float(shared_fraction)
        self.shared_axes = axes

    def check(self, item_shape: Sequence[int]) -> None:
        spatial_rank = len(item_shape) - 1
        if max(self.shared_axes) >= spatial_rank:
            raise ValueError(f"shared_axes {list(self.shared_axes)} do not exist in items of shape "
                             f"{list(item_shape)} ({spatial_rank} spatial axes: 0 to {spatial_rank - 1})")

    def _draw(self, shape: tuple[int, ...], generator: torch.Generator | None,
              device: torch.device | str | None, dtype: torch.dtype | None) -> Tensor:
        self.check(shape[1:])
        shared_shape = list(shape)
        for axis in self.shared_axes:
            shared_shape[2 + axis] = 1
        own = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        shared = torch.randn(shared_shape, generator=generator, device=device, dtype=dtype)
        r = self.shared_fraction
        return (1 - r) ** 0.5 * own + r**0.5 * shared

    def __repr__(self) -> str:
        return f"MixedNoise(shared_fraction={self.shared_fraction}, shared_axes={list(self.shared_axes)})"


#: the prior used where none is configured
GAUSSIAN = GaussianNoise()
