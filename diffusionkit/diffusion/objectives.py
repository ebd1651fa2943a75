"""What a network predicts (eps, x0 or v), conversions between them, and loss weights.

All functions take the VP form ``x_t = alpha x0 + sigma eps`` with ``alpha`` and ``sigma``
broadcastable to the data (any rank). ``v = alpha eps - sigma x0`` (Salimans & Ho 2022,
"Progressive Distillation for Fast Sampling of Diffusion Models"). Conversions from v divide
by ``alpha^2 + sigma^2``, so they are exact for any (alpha, sigma), not only VP ones.
"""

from __future__ import annotations

import torch
from torch import Tensor

PREDICTIONS = ("eps", "x0", "v")
WEIGHTINGS = ("uniform", "min_snr")


def check_prediction(prediction: str) -> str:
    """Return ``prediction`` if known, else raise ValueError listing the options."""
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction {prediction!r}; choose one of: {', '.join(PREDICTIONS)}")
    return prediction


def training_target(prediction: str, x0: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """The regression target for a network predicting ``prediction`` at x_t = alpha x0 + sigma eps."""
    check_prediction(prediction)
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    return alpha * eps - sigma * x0


def predicted_x0(prediction: str, output: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Clean data implied by a network output of kind ``prediction`` at x_t."""
    check_prediction(prediction)
    if prediction == "eps":
        return (x_t - sigma * output) / alpha
    if prediction == "x0":
        return output
    return (alpha * x_t - sigma * output) / (alpha**2 + sigma**2)


def predicted_eps(prediction: str, output: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Noise implied by a network output of kind ``prediction`` at x_t."""
    check_prediction(prediction)
    if prediction == "eps":
        return output
    if prediction == "x0":
        return (x_t - alpha * output) / sigma
    return (sigma * x_t + alpha * output) / (alpha**2 + sigma**2)


def loss_weight(weighting: str, snr: Tensor, prediction: str, gamma: float = 5.0) -> Tensor:
    """Per-sample loss weights.

    ``uniform``: ones. ``min_snr`` (Hang et al. 2023, "Efficient Diffusion Training via
    Min-SNR Weighting Strategy"): weights that turn the MSE on ``prediction`` into the
    min(snr, gamma)-weighted x0-MSE: eps -> min(snr, g)/snr, v -> min(snr, g)/(snr + 1),
    x0 -> min(snr, g). The eps weight is computed as min(1, g/snr), which is 1 at snr = 0.
    """
    check_prediction(prediction)
    if weighting == "uniform":
        return torch.ones_like(snr)
    if weighting != "min_snr":
        raise ValueError(f"unknown loss weighting {weighting!r}; choose one of: {', '.join(WEIGHTINGS)}")
    clipped = snr.clamp(max=gamma)
    if prediction == "eps":
        return (gamma / snr).clamp(max=1.0)
    if prediction == "v":
        return clipped / (snr + 1)
    return clipped


def weighted_mse(output: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean over non-batch dims of the squared error, times ``weight`` [B], averaged."""
    per_sample = (output - target).pow(2).flatten(1).mean(dim=1)
    if weight is not None:
        per_sample = per_sample * weight
    return per_sample.mean()
