"""What a network predicts (eps, x0 or v) as one object per kind, and loss weights.

All methods take the VP form ``x_t = alpha x0 + sigma eps`` with ``alpha`` and ``sigma``
broadcastable to the data (any rank). ``v = alpha eps - sigma x0`` (Salimans & Ho 2022,
"Progressive Distillation for Fast Sampling of Diffusion Models"). Conversions from v divide
by ``alpha^2 + sigma^2``, so they are exact for any (alpha, sigma), not only VP ones.

A :class:`Parameterization` is what training (its target and loss weight) and sampling (the
x0 a denoiser returns) share; :func:`parameterization` is the one place a prediction's name is
looked up. The module-level functions are that lookup followed by the method, for callers that
hold a name.
"""

from __future__ import annotations

import torch
from torch import Tensor

WEIGHTINGS = ("uniform", "min_snr")


class Parameterization:
    """What a network's output means at ``x_t = alpha x0 + sigma eps``; subclasses fill in one kind."""

    #: the name configs use (``diffusion.prediction``)
    name: str

    def target(self, x0: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        """The regression target of the network."""
        raise NotImplementedError

    def x0(self, output: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        """Clean data implied by a network output at x_t."""
        raise NotImplementedError

    def eps(self, output: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        """Noise implied by a network output at x_t."""
        raise NotImplementedError

    def min_snr_weight(self, snr: Tensor, gamma: float) -> Tensor:
        """The weight that turns the MSE on this target into the min(snr, gamma)-weighted x0-MSE
        (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy")."""
        raise NotImplementedError

    def loss_weight(self, weighting: str, snr: Tensor, gamma: float = 5.0) -> Tensor:
        """Per-sample loss weights: ``uniform`` (ones) or ``min_snr``."""
        if weighting == "uniform":
            return torch.ones_like(snr)
        if weighting != "min_snr":
            raise ValueError(f"unknown loss weighting {weighting!r}; choose one of: {', '.join(WEIGHTINGS)}")
        return self.min_snr_weight(snr, gamma)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EpsPrediction(Parameterization):
    """The network predicts the added noise (Ho et al. 2020)."""

    name = "eps"

    def target(self, x0: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return eps

    def x0(self, output: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return (x_t - sigma * output) / alpha

    def eps(self, output: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return output

    def min_snr_weight(self, snr: Tensor, gamma: float) -> Tensor:
        """min(snr, g) / snr, computed as min(1, g / snr): 1 at snr = 0."""
        return (gamma / snr).clamp(max=1.0)


class X0Prediction(Parameterization):
    """The network predicts the clean data."""

    name = "x0"

    def target(self, x0: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return x0

    def x0(self, output: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return output

    def eps(self, output: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return (x_t - alpha * output) / sigma

    def min_snr_weight(self, snr: Tensor, gamma: float) -> Tensor:
        return snr.clamp(max=gamma)


class VPrediction(Parameterization):
    """The network predicts the velocity ``v = alpha eps - sigma x0`` (Salimans & Ho 2022)."""

    name = "v"

    def target(self, x0: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return alpha * eps - sigma * x0

    def x0(self, output: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return (alpha * x_t - sigma * output) / (alpha**2 + sigma**2)

    def eps(self, output: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return (sigma * x_t + alpha * output) / (alpha**2 + sigma**2)

    def min_snr_weight(self, snr: Tensor, gamma: float) -> Tensor:
        """min(snr, g) / (snr + 1)."""
        return snr.clamp(max=gamma) / (snr + 1)


#: every parameterization by its config name
PARAMETERIZATIONS: dict[str, type[Parameterization]] = {p.name: p for p in (EpsPrediction, X0Prediction, VPrediction)}
PREDICTIONS = tuple(PARAMETERIZATIONS)


def parameterization(prediction: str | Parameterization) -> Parameterization:
    """The parameterization named ``prediction`` (one given as an object is returned as it is);
    ValueError listing the options for an unknown name."""
    if isinstance(prediction, Parameterization):
        return prediction
    if prediction not in PARAMETERIZATIONS:
        raise ValueError(f"unknown prediction {prediction!r}; choose one of: {', '.join(PREDICTIONS)}")
    return PARAMETERIZATIONS[prediction]()


def training_target(prediction: str, x0: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """The regression target for a network predicting ``prediction`` at x_t = alpha x0 + sigma eps."""
    return parameterization(prediction).target(x0, eps, alpha, sigma)


def predicted_x0(prediction: str, output: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Clean data implied by a network output of kind ``prediction`` at x_t."""
    return parameterization(prediction).x0(output, x_t, alpha, sigma)


def predicted_eps(prediction: str, output: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Noise implied by a network output of kind ``prediction`` at x_t."""
    return parameterization(prediction).eps(output, x_t, alpha, sigma)


def loss_weight(weighting: str, snr: Tensor, prediction: str, gamma: float = 5.0) -> Tensor:
    """Per-sample loss weights of ``weighting`` for a network predicting ``prediction`` (see
    :meth:`Parameterization.loss_weight`)."""
    return parameterization(prediction).loss_weight(weighting, snr, gamma)


def weighted_mse(output: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean over non-batch dims of the squared error, times ``weight`` [B], averaged."""
    per_sample = (output - target).pow(2).flatten(1).mean(dim=1)
    if weight is not None:
        per_sample = per_sample * weight
    return per_sample.mean()
