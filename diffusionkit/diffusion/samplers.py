"""Samplers: small functions over a :class:`~diffusionkit.diffusion.denoiser.Denoiser`.

Every sampler is ``sample_x(denoiser, x, sigmas, *, generator=None, callback=None,
noise_prior=GAUSSIAN)`` plus its own named keyword options (only ``sample_ddim`` has one,
``eta``; there is no catch-all, so a misspelt option is an error, not a silent no-op).
``x`` is the start, already scaled (``noise * sigmas[0]``, or an SDEdit start); ``sigmas``
descends and ends in 0.
``callback(i, x, x0_hat)`` sees the state at ``sigmas[i]`` and the denoiser's estimate there.
Deterministic samplers ignore ``generator`` and ``noise_prior`` (the
:mod:`~diffusionkit.diffusion.noise` prior the model was trained on, which stochastic ones draw
their fresh noise from).

The first-order step shared by all of them, ``x' = x0 + (sigma'/sigma)(x - x0)``, is Euler
on the probability-flow ODE, DDIM with eta = 0, and DPM-Solver++(1) at once; it lands on
``x0`` exactly when ``sigma' = 0``.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch
from torch import Tensor

from diffusionkit.diffusion.denoiser import Denoiser
from diffusionkit.diffusion.noise import GAUSSIAN, GaussianNoise

Callback = Callable[[int, Tensor, Tensor], None]


class Sampler(Protocol):
    def __call__(
        self, denoiser: Denoiser, x: Tensor, sigmas: Tensor, *,
        generator: torch.Generator | None = None, callback: Callback | None = None,
        noise_prior: GaussianNoise = GAUSSIAN,
    ) -> Tensor: ...


def _prepare(x: Tensor, sigmas: Tensor) -> Tensor:
    return sigmas.to(device=x.device, dtype=torch.promote_types(sigmas.dtype, x.dtype))


def _denoise(denoiser: Denoiser, x: Tensor, sigma: Tensor, i: int, callback: Callback | None) -> Tensor:
    x0 = denoiser(x, sigma.expand(x.shape[0]))
    if callback is not None:
        callback(i, x, x0)
    return x0


def _first_order_step(x: Tensor, x0: Tensor, sigma: Tensor, sigma_next: Tensor) -> Tensor:
    return x0 + (sigma_next / sigma) * (x - x0)


def ancestral_split(sigma: Tensor, sigma_next: Tensor, eta: float) -> tuple[Tensor, Tensor]:
    """``(sigma_down, sigma_up)`` with sigma_down^2 + sigma_up^2 = sigma_next^2; eta = 1 is the
    DDPM posterior variance, eta = 0 is deterministic (Song et al. 2021, DDIM eq. 16 in VE form)."""
    if eta == 0:
        return sigma_next, torch.zeros_like(sigma_next)
    sigma_up = (eta * sigma_next * (sigma**2 - sigma_next**2).clamp(min=0).sqrt() / sigma).clamp(max=sigma_next)
    return (sigma_next**2 - sigma_up**2).sqrt(), sigma_up


def sample_euler(
    denoiser: Denoiser, x: Tensor, sigmas: Tensor, *,
    generator: torch.Generator | None = None, callback: Callback | None = None,
    noise_prior: GaussianNoise = GAUSSIAN,
) -> Tensor:
    """Euler on the probability-flow ODE (Karras et al. 2022, Algorithm 1 without correction)."""
    sigmas = _prepare(x, sigmas)
    for i in range(len(sigmas) - 1):
        x0 = _denoise(denoiser, x, sigmas[i], i, callback)
        x = _first_order_step(x, x0, sigmas[i], sigmas[i + 1])
    return x


def sample_heun(
    denoiser: Denoiser, x: Tensor, sigmas: Tensor, *,
    generator: torch.Generator | None = None, callback: Callback | None = None,
    noise_prior: GaussianNoise = GAUSSIAN,
) -> Tensor:
    """Heun's second-order method (Karras et al. 2022, Algorithm 1); the step to 0 is Euler."""
    sigmas = _prepare(x, sigmas)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        x0 = _denoise(denoiser, x, sigma, i, callback)
        x_euler = _first_order_step(x, x0, sigma, sigma_next)
        if sigma_next == 0:
            x = x_euler
            continue
        d = (x - x0) / sigma
        d_next = (x_euler - denoiser(x_euler, sigma_next.expand(x.shape[0]))) / sigma_next
        x = x + (sigma_next - sigma) * (d + d_next) / 2
    return x


def sample_ddim(
    denoiser: Denoiser, x: Tensor, sigmas: Tensor, *,
    generator: torch.Generator | None = None, callback: Callback | None = None,
    noise_prior: GaussianNoise = GAUSSIAN, eta: float = 0.0,
) -> Tensor:
    """DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models") in VE form:
    ``x' = x0 + sigma_down eps_hat + sigma_up z`` with eps_hat = (x - x0)/sigma; eta = 0 is
    deterministic, eta = 1 is DDPM's ancestral sampler."""
    sigmas = _prepare(x, sigmas)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        x0 = _denoise(denoiser, x, sigma, i, callback)
        sigma_down, sigma_up = ancestral_split(sigma, sigma_next, eta)
        x = _first_order_step(x, x0, sigma, sigma_down)
        if eta > 0 and sigma_up > 0:
            x = x + sigma_up * noise_prior.like(x, generator)
    return x


def sample_ddpm(
    denoiser: Denoiser, x: Tensor, sigmas: Tensor, *,
    generator: torch.Generator | None = None, callback: Callback | None = None,
    noise_prior: GaussianNoise = GAUSSIAN,
) -> Tensor:
    """Ancestral sampling (Ho et al. 2020, "Denoising Diffusion Probabilistic Models"): each step
    draws from the posterior q(x' | x, x0_hat), which is DDIM with eta = 1."""
    return sample_ddim(denoiser, x, sigmas, generator=generator, callback=callback,
                       noise_prior=noise_prior, eta=1.0)


def sample_dpmpp_2m(
    denoiser: Denoiser, x: Tensor, sigmas: Tensor, *,
    generator: torch.Generator | None = None, callback: Callback | None = None,
    noise_prior: GaussianNoise = GAUSSIAN,
) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of
    Diffusion Probabilistic Models", Algorithm 2): multistep in lambda = -log(sigma); the first
    step and the step to sigma = 0 are first order."""
    sigmas = _prepare(x, sigmas)
    x0_prev = None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        x0 = _denoise(denoiser, x, sigma, i, callback)
        x0_d = x0
        if x0_prev is not None and sigma_next > 0:
            r = (sigmas[i - 1] / sigma).log() / (sigma / sigma_next).log()  # h_prev / h
            x0_d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
        x = _first_order_step(x, x0_d, sigma, sigma_next)
        x0_prev = x0
    return x


def invert_ddim(denoiser: Denoiser, x0: Tensor, sigmas: Tensor) -> Tensor:
    """Deterministic DDIM inversion (Song et al. 2021; Dhariwal & Nichol 2021, App. F): walk the
    descending ``sigmas`` backwards from 0 to sigmas[0], reusing each step's eps_hat. The step
    from sigma = 0 evaluates the denoiser at the next sigma. Returns the VE latent at sigmas[0]."""
    sigmas = _prepare(x0, sigmas).flip(0)
    x = x0
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        sigma_eval = sigma if sigma > 0 else sigma_next
        eps = (x - denoiser(x, sigma_eval.expand(x.shape[0]))) / sigma_eval
        x = x + (sigma_next - sigma) * eps
    return x


SAMPLERS: dict[str, Sampler] = {
    "euler": sample_euler,
    "heun": sample_heun,
    "ddim": sample_ddim,
    "ddpm": sample_ddpm,
    "dpmpp_2m": sample_dpmpp_2m,
}


def get_sampler(name: str) -> Sampler:
    """The sampler registered as ``name``; ValueError naming the choices otherwise."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}") from None
