"""The one denoiser contract every sampler uses (Karras et al. 2022, "Elucidating the Design
Space of Diffusion-Based Generative Models"; k-diffusion's convention).

A denoiser is a callable ``denoiser(x, sigma) -> x0_hat`` where ``x = x0 + sigma * eps`` is in
variance-exploding form, ``x`` is [B, C, *spatial] and ``sigma`` is [B].
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, Protocol

import torch
from torch import Tensor

from diffusionkit.diffusion.objectives import Parameterization, parameterization
from diffusionkit.diffusion.schedules import NoiseSchedule, append_dims


class Denoiser(Protocol):
    """``(x [B, C, *spatial] in VE form, sigma [B]) -> predicted clean data, shaped like x``."""

    def __call__(self, x: Tensor, sigma: Tensor) -> Tensor: ...


class VPDenoiser:
    """Wrap a network trained on a discrete VP schedule as a VE :class:`Denoiser`.

    ``net(x_vp, t, **cond)`` takes the VP input and continuous timesteps ``t`` [B] (floats
    interpolated from sigma) and predicts ``prediction`` ("eps", "x0" or "v", or a
    :class:`Parameterization`). The VE input is scaled by ``c_in = 1 / sqrt(1 + sigma^2)`` = alpha,
    and sigma_vp = sigma * c_in. With ``autocast`` (e.g. ``torch.bfloat16``) the net runs under
    mixed precision and its output is cast back to the input's dtype.
    """

    def __init__(self, net: Callable[..., Tensor], schedule: NoiseSchedule, prediction: str | Parameterization,
                 autocast: torch.dtype | None = None) -> None:
        self.net = net
        self.schedule = schedule
        self.parameterization = parameterization(prediction)
        self.autocast = autocast

    @property
    def prediction(self) -> str:
        return self.parameterization.name

    def __call__(self, x: Tensor, sigma: Tensor, **cond: Tensor) -> Tensor:
        c_in = append_dims(torch.rsqrt(1 + sigma**2), x.ndim).to(x.dtype)
        x_vp = x * c_in
        with self._precision(x):
            out = self.net(x_vp, self.schedule.sigma_to_t(sigma), **cond)
        sigma_vp = append_dims(sigma, x.ndim).to(x.dtype) * c_in
        return self.parameterization.x0(out.to(x.dtype), x_vp, c_in, sigma_vp)

    def _precision(self, x: Tensor):
        return nullcontext() if self.autocast is None else torch.autocast(x.device.type, dtype=self.autocast)
