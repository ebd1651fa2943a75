"""Guidance as denoiser wrappers: each takes a denoiser and returns one, so every sampler
gains it for free. Also SDEdit start points for variations and conversions."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from diffusionkit.diffusion.denoiser import Denoiser
from diffusionkit.diffusion.schedules import append_dims


def conditioned(denoiser: Callable[..., Tensor], cond: dict[str, Tensor]) -> Denoiser:
    """Bind conditioning keyword arguments (``labels=``, ``concat=``, ...) to a denoiser."""

    def bound(x: Tensor, sigma: Tensor) -> Tensor:
        return denoiser(x, sigma, **cond)

    return bound


def classifier_free_guidance(
    denoiser: Callable[..., Tensor], cond: dict[str, Tensor], uncond: dict[str, Tensor], scale: float
) -> Denoiser:
    """Classifier-free guidance (Ho & Salimans 2022): ``x0_u + scale (x0_c - x0_u)`` from one
    batched forward over [uncond; cond]. ``scale == 1`` runs the conditional branch only.
    ``cond`` and ``uncond`` hold batch-first tensors under the same keys."""
    if set(cond) != set(uncond):
        raise ValueError(f"cond and uncond need the same keys, got {sorted(cond)} and {sorted(uncond)}")
    if scale == 1:
        return conditioned(denoiser, cond)
    both = {k: torch.cat([uncond[k], cond[k]]) for k in cond}

    def guided(x: Tensor, sigma: Tensor) -> Tensor:
        x0_u, x0_c = denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), **both).chunk(2)
        return x0_u + scale * (x0_c - x0_u)

    return guided


def clipped(denoiser: Denoiser, limit: float = 1.0) -> Denoiser:
    """Clamp every x0 prediction to ``[-limit, limit]`` ("clip_denoised" of Ho et al. 2020):
    for bounded data spaces it keeps a poorly trained eps model from diverging at high noise."""

    def clamp(x: Tensor, sigma: Tensor) -> Tensor:
        return denoiser(x, sigma).clamp(-limit, limit)

    return clamp


def inpainting(denoiser: Denoiser, known: Tensor, mask: Tensor, noise: Tensor) -> Denoiser:
    """Replacement-method inpainting (as in Lugmayr et al. 2022, RePaint, without resampling):
    where ``mask == 1`` the input is replaced by ``known + sigma * noise`` and the estimate by
    ``known``, so every sampler keeps the known region and ends on it exactly (for 0/1 masks).
    ``known``, ``mask`` and ``noise`` broadcast against x."""
    if mask.numel() and (mask.min() < 0 or mask.max() > 1):
        raise ValueError("inpainting mask values must lie in [0, 1] (1 marks the known region)")

    def inpainted(x: Tensor, sigma: Tensor) -> Tensor:
        noisy_known = known + append_dims(sigma, x.ndim) * noise
        x = mask * noisy_known + (1 - mask) * x
        return mask * known + (1 - mask) * denoiser(x, sigma)

    return inpainted


def strength_tail(sigmas: Tensor, strength: float) -> Tensor:
    """The last ``round(strength * steps)`` steps of a descending ``sigmas`` schedule (ending in
    0): where an edit of the given strength starts (SDEdit, Meng et al. 2022; or a partial DDIM
    inversion). Strength 0 gives ``[0.]`` (nothing to do), strength 1 the whole schedule."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    steps = len(sigmas) - 1
    keep = round(strength * steps)
    return sigmas[steps - keep:] if keep else sigmas.new_zeros(1)


def sdedit_start(x0: Tensor, sigmas: Tensor, strength: float, noise: Tensor) -> tuple[Tensor, Tensor]:
    """SDEdit (Meng et al. 2022): noise ``x0`` part-way with ``noise`` (a draw from the model's
    noise prior, shaped like ``x0``) and return ``(x_start, sigmas_tail)`` with the tail of
    :func:`strength_tail`. Strength 0 returns ``(x0, [0.])`` (sampling is the identity); when the
    tail is the whole schedule the start is pure noise ``noise * sigmas[0]``, ignoring ``x0``,
    exactly as a plain generation run."""
    tail = strength_tail(sigmas, strength)
    if len(tail) == 1:
        return x0, tail
    noise = noise.to(x0)
    if len(tail) == len(sigmas):
        return noise * tail[0].to(x0), tail
    return x0 + tail[0].to(x0) * noise, tail
