import pytest
import torch

from diffusionkit.diffusion.objectives import (
    PREDICTIONS,
    loss_weight,
    predicted_eps,
    predicted_x0,
    training_target,
    weighted_mse,
)
from diffusionkit.diffusion.schedules import NoiseSchedule, append_dims


def _vp_batch(spatial: tuple[int, ...], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(4, 3, *spatial, generator=g, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    alpha, sigma = NoiseSchedule("cosine").alpha_sigma(torch.tensor([0, 300, 700, 990]))
    alpha, sigma = (append_dims(c.double(), x0.ndim) for c in (alpha, sigma))
    return x0, eps, alpha, sigma, alpha * x0 + sigma * eps


@pytest.mark.parametrize("spatial", [(5,), (4, 4), (2, 3, 4)])
@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_conversions_round_trip(prediction, spatial):
    x0, eps, alpha, sigma, x_t = _vp_batch(spatial)
    target = training_target(prediction, x0, eps, alpha, sigma)
    assert torch.allclose(predicted_x0(prediction, target, x_t, alpha, sigma), x0, atol=1e-8)
    assert torch.allclose(predicted_eps(prediction, target, x_t, alpha, sigma), eps, atol=1e-8)


def test_v_is_alpha_eps_minus_sigma_x0():
    one = torch.tensor(1.0)
    v = training_target("v", x0=one, eps=2 * one, alpha=0.6 * one, sigma=0.8 * one)
    assert v.item() == pytest.approx(0.6 * 2 - 0.8 * 1)


def test_v_conversion_holds_off_the_unit_circle():
    # alpha^2 + sigma^2 != 1 (e.g. a VE input); conversions must still be exact.
    x0, eps = torch.tensor([0.3, -1.2]), torch.tensor([0.7, 0.1])
    alpha, sigma = torch.tensor(1.0), torch.tensor(2.5)
    x_t = alpha * x0 + sigma * eps
    v = training_target("v", x0, eps, alpha, sigma)
    assert torch.allclose(predicted_x0("v", v, x_t, alpha, sigma), x0, atol=1e-6)
    assert torch.allclose(predicted_eps("v", v, x_t, alpha, sigma), eps, atol=1e-6)


@pytest.mark.parametrize("fn", [training_target, predicted_x0, predicted_eps])
def test_unknown_prediction_lists_options(fn):
    t = torch.zeros(1)
    with pytest.raises(ValueError, match="eps, x0, v"):
        fn("score", t, t, t, t)


SNR = torch.tensor([0.5, 5.0, 20.0])


def test_min_snr_weights_match_their_formulas():
    assert torch.allclose(loss_weight("min_snr", SNR, "eps"), torch.tensor([1.0, 1.0, 0.25]))
    assert torch.allclose(loss_weight("min_snr", SNR, "v"), torch.tensor([0.5 / 1.5, 5 / 6, 5 / 21]))
    assert torch.allclose(loss_weight("min_snr", SNR, "x0"), torch.tensor([0.5, 5.0, 5.0]))
    assert torch.allclose(loss_weight("min_snr", SNR, "eps", gamma=1.0), torch.tensor([1.0, 0.2, 0.05]))


def test_min_snr_eps_weights_are_at_most_one_and_finite_at_zero_snr():
    snr = torch.cat([torch.zeros(1), torch.logspace(-4, 4, 50)])
    w = loss_weight("min_snr", snr, "eps")
    assert torch.isfinite(w).all() and (w <= 1).all() and w[0] == 1
    assert loss_weight("min_snr", torch.zeros(1), "v").item() == 0.0


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_min_snr_turns_any_prediction_loss_into_clipped_x0_loss(prediction):
    """The defining property (Hang et al. 2023): w * MSE(pred) == min(snr, gamma) * MSE(x0)."""
    x0, eps, alpha, sigma, x_t = _vp_batch((3, 3), seed=1)
    target = training_target(prediction, x0, eps, alpha, sigma)
    output = target + 0.1 * torch.randn(target.shape, generator=torch.Generator().manual_seed(2), dtype=target.dtype)
    snr = (alpha**2 / sigma**2).flatten()
    x0_hat = predicted_x0(prediction, output, x_t, alpha, sigma)
    w = loss_weight("min_snr", snr, prediction, gamma=5.0)
    lhs = w * (output - target).pow(2).flatten(1).mean(1)
    rhs = snr.clamp(max=5.0) * (x0_hat - x0).pow(2).flatten(1).mean(1)
    assert torch.allclose(lhs, rhs, rtol=1e-6)


def test_uniform_weights_and_unknown_weighting():
    assert torch.equal(loss_weight("uniform", SNR, "v"), torch.ones(3))
    with pytest.raises(ValueError, match="uniform, min_snr"):
        loss_weight("p2", SNR, "eps")


def test_weighted_mse_known_values():
    output = torch.zeros(2, 3, 4)
    target = torch.stack([torch.ones(3, 4), 2 * torch.ones(3, 4)])  # per-sample MSE 1 and 4
    assert weighted_mse(output, target, torch.tensor([1.0, 1.0])).item() == pytest.approx(2.5)
    assert weighted_mse(output, target, torch.tensor([3.0, 0.5])).item() == pytest.approx((3 + 2) / 2)
    assert weighted_mse(output, target, None).item() == pytest.approx(2.5)
