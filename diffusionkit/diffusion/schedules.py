"""Discrete variance-preserving noise schedules and the sampling sigmas drawn from them.

A schedule of ``T`` steps defines ``alpha_bar[t]``; the forward process is
``x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps`` (VP form). Samplers work in the
equivalent variance-exploding form ``x = x0 + sigma eps`` with
``sigma = sqrt((1 - alpha_bar) / alpha_bar)`` (Karras et al. 2022, "Elucidating the Design
Space of Diffusion-Based Generative Models").
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

# alpha_bar used for sigmas at a zero-terminal-SNR final step (as diffusers does), so that
# sigma_max stays finite.
TERMINAL_ALPHA_BAR = 2.0**-24


def betas_linear(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """Betas linear in t (Ho et al. 2020, "Denoising Diffusion Probabilistic Models")."""
    return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)


def betas_scaled_linear(
    num_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012
) -> Tensor:
    """Betas linear in sqrt(beta) (Rombach et al. 2022, Stable Diffusion)."""
    return torch.linspace(beta_start**0.5, beta_end**0.5, num_timesteps, dtype=torch.float64) ** 2


def betas_cosine(num_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Betas from alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi/2) (Nichol & Dhariwal 2021,
    "Improved Denoising Diffusion Probabilistic Models"), clipped at ``max_beta``."""
    t = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


def rescale_zero_terminal_snr(betas: Tensor) -> Tensor:
    """Shift and scale sqrt(alpha_bar) so the last step has alpha_bar = 0 while the first is
    unchanged (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are
    Flawed", Algorithm 1)."""
    sqrt_ab = torch.cumprod(1 - betas.double(), dim=0).sqrt()
    first, last = sqrt_ab[0].clone(), sqrt_ab[-1].clone()
    sqrt_ab = (sqrt_ab - last) * first / (first - last)
    alpha_bar = sqrt_ab**2
    alphas = torch.cat([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])
    return (1 - alphas).to(betas.dtype)


def shift_snr(alpha_bar: Tensor, factor: float) -> Tensor:
    """``alpha_bar`` whose signal-to-noise ratio is ``SNR / factor**2`` at every step: the shifted
    schedule of simple diffusion (Hoogeboom et al. 2023) for data more redundant than the one a
    schedule was made for (larger images, many similar frames); ``factor > 1`` adds noise."""
    if factor <= 0:
        raise ValueError(f"snr_shift must be positive, got {factor}")
    snr = alpha_bar / (1 - alpha_bar)
    shifted = snr / factor**2
    return shifted / (1 + shifted)


BETA_SCHEDULES: dict[str, Callable[..., Tensor]] = {
    "linear": betas_linear,
    "scaled_linear": betas_scaled_linear,
    "cosine": betas_cosine,
}


def _ve_sigmas(alpha_bar: Tensor) -> Tensor:
    """``sqrt((1 - alpha_bar) / alpha_bar)``. A zero terminal alpha_bar (infinite sigma) is
    replaced by 2**-24 as in diffusers; where alpha_bar[-2] is already below that, by the
    geometric continuation alpha_bar[-2]^2 / alpha_bar[-3], so sigmas stay ascending."""
    if alpha_bar[-1] <= 0:
        alpha_bar = alpha_bar.clone()
        before = float(alpha_bar[-2])
        alpha_bar[-1] = TERMINAL_ALPHA_BAR if TERMINAL_ALPHA_BAR < before else before**2 / float(alpha_bar[-3])
    return ((1 - alpha_bar) / alpha_bar).sqrt()


#: the most discrete steps a schedule may have (its tables grow with it; 1000 is usual).
MAX_TIMESTEPS = 100_000


class NoiseSchedule(torch.nn.Module):
    """A discrete VP schedule: ``alpha_bar`` per integer timestep, plus the VE sigmas.

    Buffers (not persistent, so checkpoints hold weights only; the schedule is config):
    ``alphas_cumprod`` [T], ``sigmas`` [T] ascending, ``log_sigmas`` [T].
    """

    alphas_cumprod: Tensor
    sigmas: Tensor
    log_sigmas: Tensor

    def __init__(
        self,
        kind: str = "linear",
        num_timesteps: int = 1000,
        zero_terminal_snr: bool = False,
        snr_shift: float = 1.0,
        **beta_kwargs: float,
    ) -> None:
        super().__init__()
        if kind not in BETA_SCHEDULES:
            raise ValueError(f"unknown schedule kind {kind!r}; choose one of: {', '.join(BETA_SCHEDULES)}")
        if not 2 <= num_timesteps <= MAX_TIMESTEPS:
            raise ValueError(f"num_timesteps must be from 2 to {MAX_TIMESTEPS}, got {num_timesteps}")
        betas = BETA_SCHEDULES[kind](num_timesteps, **beta_kwargs)
        if zero_terminal_snr:
            betas = rescale_zero_terminal_snr(betas)
        alpha_bar = torch.cumprod(1 - betas, dim=0)
        if snr_shift != 1.0:
            alpha_bar = shift_snr(alpha_bar, snr_shift)
        sigmas = _ve_sigmas(alpha_bar)
        self.register_buffer("alphas_cumprod", alpha_bar.float(), persistent=False)
        self.register_buffer("sigmas", sigmas.float(), persistent=False)
        self.register_buffer("log_sigmas", sigmas.log().float(), persistent=False)

    @property
    def num_timesteps(self) -> int:
        return self.alphas_cumprod.shape[0]

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """VP coefficients ``(sqrt(alpha_bar[t]), sqrt(1 - alpha_bar[t]))`` at integer steps."""
        alpha_bar = self.alphas_cumprod[t]
        return alpha_bar.sqrt(), (1 - alpha_bar).sqrt()

    def alpha_sigma_like(self, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`alpha_sigma` shaped and typed to broadcast over ``x`` [B, C, *spatial]."""
        alpha, sigma = (append_dims(c, x.ndim).to(x.dtype) for c in self.alpha_sigma(t))
        return alpha, sigma

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """The forward process ``x_t = alpha x0 + sigma noise`` for ``t`` [B] and x0 of any rank."""
        alpha, sigma = self.alpha_sigma_like(t, x0)
        return alpha * x0 + sigma * noise

    def snr(self, t: Tensor) -> Tensor:
        """Signal-to-noise ratio ``alpha_bar / (1 - alpha_bar)`` at integer steps (0 at a zero
        terminal SNR)."""
        alpha_bar = self.alphas_cumprod[t]
        return alpha_bar / (1 - alpha_bar)

    def sigma_to_t(self, sigma: Tensor) -> Tensor:
        """Continuous timestep for a VE sigma: linear interpolation in log-sigma between the
        integer steps (k-diffusion's DiscreteSchedule), clamped to ``[0, T-1]``."""
        log_sigma = sigma.to(self.log_sigmas).clamp(min=torch.finfo(self.log_sigmas.dtype).tiny).log()
        high = torch.searchsorted(self.log_sigmas, log_sigma.contiguous()).clamp(1, self.num_timesteps - 1)
        low = high - 1
        lo, hi = self.log_sigmas[low], self.log_sigmas[high]
        w = ((log_sigma - lo) / (hi - lo)).clamp(0, 1)
        return low + w

    def t_to_sigma(self, t: Tensor) -> Tensor:
        """VE sigma at a continuous timestep, interpolating log-sigma (inverse of sigma_to_t)."""
        t = t.to(self.log_sigmas).clamp(0, self.num_timesteps - 1)
        low = t.floor().long()
        high = t.ceil().long()
        w = t - low
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()


def append_dims(t: Tensor, ndim: int) -> Tensor:
    """Append trailing singleton dims so a [B] tensor broadcasts over [B, C, *spatial]."""
    return t.reshape(*t.shape, *([1] * (ndim - t.ndim)))


def karras_sigmas(sigma_min: float, sigma_max: float, n: int, rho: float = 7.0) -> Tensor:
    """``n`` sigmas from sigma_max down to sigma_min, evenly spaced in sigma^(1/rho)
    (Karras et al. 2022, eq. 5). No trailing zero."""
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return ((hi + ramp * (lo - hi)) ** rho).float()


def _timesteps(spacing: str, num_timesteps: int, steps: int) -> Tensor:
    """Descending integer timesteps for the discrete spacings (Lin et al. 2024, Table 2)."""
    T = num_timesteps
    i = torch.arange(steps, dtype=torch.float64)
    if spacing == "trailing":
        return (T - i * T / steps).round().long() - 1
    if spacing == "leading":
        return (i * (T // steps)).flip(0).long()
    return torch.linspace(0, T - 1, steps, dtype=torch.float64).round().flip(0).long()


SPACINGS = ("trailing", "leading", "linspace", "karras")


def sigmas_for_steps(schedule: NoiseSchedule, steps: int, spacing: str = "trailing", rho: float = 7.0) -> Tensor:
    """Descending sampling sigmas [steps + 1] ending in 0.

    ``trailing`` (recommended by Lin et al. 2024: it starts at the last step T-1),
    ``leading`` and ``linspace`` pick integer timesteps; ``karras`` is Karras et al. 2022's
    rho-spacing between the schedule's sigma_min and sigma_max.
    """
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; choose one of: {', '.join(SPACINGS)}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if spacing == "karras":
        sigmas = karras_sigmas(schedule.sigma_min, schedule.sigma_max, steps, rho).to(schedule.sigmas.device)
    else:
        if steps > schedule.num_timesteps:
            raise ValueError(f"steps ({steps}) cannot exceed the schedule's {schedule.num_timesteps} timesteps")
        sigmas = schedule.sigmas[_timesteps(spacing, schedule.num_timesteps, steps).to(schedule.sigmas.device)]
    return torch.cat([sigmas, sigmas.new_zeros(1)])
