"""Samplers, the denoiser contract and guidance, checked against a Gaussian whose exact
denoiser is known: for x0 ~ N(mu, s^2), D(x, sigma) = mu + s^2 / (s^2 + sigma^2) (x - mu), and
the probability-flow ODE keeps (x - mu) / sqrt(s^2 + sigma^2) constant."""

import pytest
import torch

from diffusionkit.diffusion.denoiser import VPDenoiser
from diffusionkit.diffusion.guidance import classifier_free_guidance, conditioned, inpainting, sdedit_start
from diffusionkit.diffusion.noise import GAUSSIAN
from diffusionkit.diffusion.objectives import PREDICTIONS, training_target
from diffusionkit.diffusion.samplers import (
    SAMPLERS,
    ancestral_split,
    get_sampler,
    invert_ddim,
    sample_ddim,
    sample_ddpm,
    sample_heun,
)
from diffusionkit.diffusion.schedules import NoiseSchedule, append_dims, sigmas_for_steps

MU, S = 0.5, 0.3
SCHEDULE = NoiseSchedule("linear")


def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    sigma = append_dims(sigma, x.ndim).to(x)
    return MU + S**2 / (S**2 + sigma**2) * (x - MU)


def exact_ode_solution(x: torch.Tensor, sigma_start: torch.Tensor) -> torch.Tensor:
    return MU + (x - MU) * S / (S**2 + sigma_start**2) ** 0.5


def start_noise(shape, sigmas, seed=0, dtype=torch.float32):
    return GAUSSIAN.like(torch.empty(shape, dtype=dtype), torch.Generator().manual_seed(seed)) * sigmas[0].to(dtype)


def data_batch(shape=(500, 2, 2, 2), seed=3):
    return MU + S * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_recovers_the_gaussian(name):
    sigmas = sigmas_for_steps(SCHEDULE, 50, "karras")
    x = start_noise((500, 2, 2, 2), sigmas)
    out = SAMPLERS[name](gaussian_denoiser, x, sigmas, generator=torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    assert out.mean().item() == pytest.approx(MU, abs=0.03)
    assert out.std().item() == pytest.approx(S, abs=0.035)


def _ode_error(name: str, steps: int) -> float:
    sigmas = sigmas_for_steps(SCHEDULE, steps, "karras").double()
    x = start_noise((2000, 1, 1), sigmas, dtype=torch.float64)
    out = SAMPLERS[name](gaussian_denoiser, x, sigmas)
    return (out - exact_ode_solution(x, sigmas[0])).pow(2).mean().sqrt().item()


@pytest.mark.parametrize("name, order", [("euler", 1), ("ddim", 1), ("heun", 2), ("dpmpp_2m", 2)])
def test_deterministic_samplers_converge_at_their_order(name, order):
    ratio = _ode_error(name, 20) / _ode_error(name, 40)  # ~ 2**order when steps double
    assert 2**order * 0.8 < ratio < 2**order * 1.4


def test_second_order_samplers_beat_euler_at_equal_steps():
    assert _ode_error("heun", 20) < _ode_error("euler", 20) / 2
    assert _ode_error("dpmpp_2m", 20) < _ode_error("euler", 20) / 2


def test_ddim_eta0_is_deterministic_and_ddpm_is_seeded():
    sigmas = sigmas_for_steps(SCHEDULE, 20)
    x = start_noise((64, 1, 4), sigmas)
    a = sample_ddim(gaussian_denoiser, x, sigmas, generator=torch.Generator().manual_seed(0))
    b = sample_ddim(gaussian_denoiser, x, sigmas, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)

    def run(seed):
        return sample_ddpm(gaussian_denoiser, x, sigmas, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(5), run(5))
    assert not torch.allclose(run(5), run(6))


def test_eta_one_split_is_the_ddpm_posterior_variance():
    """sigma_up^2 * alpha_bar_{t-1} equals Ho et al.'s beta_tilde_t for consecutive steps."""
    ab = SCHEDULE.alphas_cumprod.double()
    for t in (1, 10, 500, 999):
        beta_t = 1 - ab[t] / ab[t - 1]
        beta_tilde = (1 - ab[t - 1]) / (1 - ab[t]) * beta_t
        sigma_down, sigma_up = ancestral_split(SCHEDULE.sigmas[t].double(), SCHEDULE.sigmas[t - 1].double(), 1.0)
        assert (sigma_up**2 * ab[t - 1]).item() == pytest.approx(beta_tilde.item(), rel=1e-3)
        assert (sigma_down**2 + sigma_up**2).item() == pytest.approx(SCHEDULE.sigmas[t - 1].double().item() ** 2)


def test_ddim_inversion_round_trip():
    sigmas = sigmas_for_steps(SCHEDULE, 200, "karras")
    data = data_batch()
    latent = invert_ddim(gaussian_denoiser, data, sigmas)
    assert (latent / sigmas[0]).std().item() == pytest.approx(1.0, abs=0.05)  # it looks like noise
    recon = sample_ddim(gaussian_denoiser, latent, sigmas)
    assert (recon - data).abs().max().item() < 0.05
    assert (recon - data).abs().mean().item() < 0.01


def test_callback_sees_every_step_in_order():
    sigmas = sigmas_for_steps(SCHEDULE, 7)
    for name, sampler in SAMPLERS.items():
        seen = []
        sampler(gaussian_denoiser, start_noise((4, 1, 3), sigmas), sigmas,
                callback=lambda i, x, x0: seen.append((i, x.shape, x0.shape)))
        assert [i for i, _, _ in seen] == list(range(7)), name
        assert all(s == (4, 1, 3) for _, xs, x0s in seen for s in (xs, x0s))


def test_get_sampler():
    assert get_sampler("heun") is sample_heun
    with pytest.raises(ValueError, match="unknown sampler 'nope'; choose one of: euler, heun, ddim, ddpm, dpmpp_2m"):
        get_sampler("nope")


# --- the denoiser contract -------------------------------------------------------------


def exact_vp_net(prediction: str, schedule: NoiseSchedule):
    """A 'network' that returns the exact eps / x0 / v of the Gaussian at (x_vp, t)."""

    def net(x_vp, t, **cond):
        sigma = schedule.t_to_sigma(t)
        alpha = append_dims(torch.rsqrt(1 + sigma**2), x_vp.ndim)
        sigma_vp = append_dims(sigma, x_vp.ndim) * alpha
        x0 = gaussian_denoiser(x_vp / alpha, sigma)
        eps = (x_vp - alpha * x0) / sigma_vp
        net.calls.append((t, cond))
        return training_target(prediction, x0, eps, alpha, sigma_vp)

    net.calls = []
    return net


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_vp_denoiser_is_exact_for_an_exact_net(prediction):
    net = exact_vp_net(prediction, SCHEDULE)
    denoiser = VPDenoiser(net, SCHEDULE, prediction)
    idx = torch.tensor([10, 500, 999])
    sigma = SCHEDULE.sigmas[idx]
    x = data_batch((3, 2, 5)) + append_dims(sigma, 3) * torch.randn(3, 2, 5)
    labels = torch.tensor([1, 2, 3])
    x0 = denoiser(x, sigma, labels=labels)
    assert torch.allclose(x0, gaussian_denoiser(x, sigma), atol=1e-4)
    t, cond = net.calls[0]
    assert torch.allclose(t, idx.float(), atol=1e-3)
    assert cond["labels"] is labels


def test_vp_denoiser_rejects_unknown_prediction():
    with pytest.raises(ValueError, match="eps, x0, v"):
        VPDenoiser(lambda x, t: x, SCHEDULE, "score")


# --- guidance --------------------------------------------------------------------------


def test_sdedit_strength_zero_returns_the_input():
    sigmas = sigmas_for_steps(SCHEDULE, 20)
    data = data_batch((8, 1, 4))
    start, tail = sdedit_start(data, sigmas, 0.0, GAUSSIAN.like(data, torch.Generator().manual_seed(0)))
    assert torch.equal(tail, torch.zeros(1))
    for sampler in SAMPLERS.values():
        assert torch.equal(sampler(gaussian_denoiser, start, tail), data)


def test_sdedit_strength_one_is_a_pure_noise_run():
    sigmas = sigmas_for_steps(SCHEDULE, 20)
    data = data_batch((8, 1, 4))
    g = torch.Generator().manual_seed(7)
    plain = sample_ddpm(gaussian_denoiser, GAUSSIAN.like(data, g) * sigmas[0], sigmas, generator=g)
    g = torch.Generator().manual_seed(7)
    start, tail = sdedit_start(data, sigmas, 1.0, GAUSSIAN.like(data, g))
    assert torch.equal(tail, sigmas)
    assert torch.equal(sample_ddpm(gaussian_denoiser, start, tail, generator=g), plain)


def test_sdedit_partial_strength_keeps_the_tail():
    sigmas = sigmas_for_steps(SCHEDULE, 20)
    data = data_batch((4000, 1, 1))
    start, tail = sdedit_start(data, sigmas, 0.3, GAUSSIAN.like(data, torch.Generator().manual_seed(0)))
    assert torch.equal(tail, sigmas[-7:])  # round(0.3 * 20) = 6 steps
    assert ((start - data) / tail[0]).std().item() == pytest.approx(1.0, abs=0.05)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            sdedit_start(data, sigmas, bad, torch.zeros_like(data))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_inpainting_keeps_the_known_region(name):
    sigmas = sigmas_for_steps(SCHEDULE, 12)
    g = torch.Generator().manual_seed(0)
    known = data_batch((6, 2, 8), seed=4)
    mask = torch.zeros(1, 1, 8)
    mask[..., :3] = 1
    noise = GAUSSIAN.like(known, g)
    denoiser = inpainting(gaussian_denoiser, known, mask, noise)
    keep = mask.expand_as(known).bool()

    def check(i, x, x0_hat):
        assert torch.equal(x0_hat[keep], known[keep])

    out = SAMPLERS[name](denoiser, noise * sigmas[0], sigmas, generator=g, callback=check)
    assert torch.equal(out[keep], known[keep])
    assert not torch.allclose(out[~keep], known[~keep])


def cond_denoiser(x, sigma, c):
    """Toy conditional denoiser: output depends on x, sigma and the cond tensor c [B, 1, 1]."""
    cond_denoiser.batches.append(x.shape[0])
    return x / (1 + append_dims(sigma, x.ndim) ** 2) + c


def test_classifier_free_guidance():
    x = torch.randn(3, 2, 4)
    sigma = torch.tensor([0.5, 1.0, 2.0])
    c, u = torch.randn(3, 1, 1), torch.zeros(3, 1, 1)
    cond_denoiser.batches = []
    one = classifier_free_guidance(cond_denoiser, {"c": c}, {"c": u}, 1.0)(x, sigma)
    assert torch.equal(one, cond_denoiser(x, sigma, c=c))
    assert cond_denoiser.batches == [3, 3]  # scale 1: a single conditional forward
    cond_denoiser.batches = []
    guided = classifier_free_guidance(cond_denoiser, {"c": c}, {"c": u}, 4.0)(x, sigma)
    assert cond_denoiser.batches == [6]  # one batched forward
    x0_c, x0_u = cond_denoiser(x, sigma, c=c), cond_denoiser(x, sigma, c=u)
    assert torch.allclose(guided, x0_u + 4.0 * (x0_c - x0_u), atol=1e-6)
    assert torch.allclose(guided, x / (1 + append_dims(sigma, 3) ** 2) + 4.0 * c, atol=1e-6)
    with pytest.raises(ValueError, match="same keys"):
        classifier_free_guidance(cond_denoiser, {"c": c}, {"d": u}, 2.0)


def test_conditioned_binds_keywords():
    x, sigma, c = torch.randn(2, 1, 3), torch.ones(2), torch.randn(2, 1, 1)
    cond_denoiser.batches = []
    assert torch.equal(conditioned(cond_denoiser, {"c": c})(x, sigma), cond_denoiser(x, sigma, c=c))


def test_clipped_bounds_every_x0_prediction():
    from diffusionkit.diffusion.guidance import clipped

    wide = clipped(lambda x, sigma: 10 * x, limit=1.0)
    out = wide(torch.tensor([0.05, -3.0, 0.2]), torch.ones(3))
    assert out.tolist() == pytest.approx([0.5, -1.0, 1.0])
