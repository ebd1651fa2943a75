import math

import pytest
import torch

from diffusionkit.diffusion.schedules import (
    BETA_SCHEDULES,
    TERMINAL_ALPHA_BAR,
    NoiseSchedule,
    betas_cosine,
    betas_linear,
    betas_scaled_linear,
    karras_sigmas,
    rescale_zero_terminal_snr,
    sigmas_for_steps,
)

KINDS = sorted(BETA_SCHEDULES)


def test_linear_betas_endpoints_and_dtype():
    betas = betas_linear(1000, 1e-4, 0.02)
    assert betas.dtype == torch.float64
    assert betas[0].item() == pytest.approx(1e-4, rel=1e-12)
    assert betas[-1].item() == pytest.approx(0.02, rel=1e-12)
    assert torch.allclose(betas.diff(), torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64))


def test_scaled_linear_is_linear_in_sqrt_beta():
    betas = betas_scaled_linear(1000, 0.00085, 0.012)
    assert betas[0].item() == pytest.approx(0.00085, rel=1e-12)
    assert betas[-1].item() == pytest.approx(0.012, rel=1e-12)
    steps = betas.sqrt().diff()
    assert torch.allclose(steps, steps[0].expand_as(steps))


def test_cosine_alpha_bar_follows_its_formula():
    T, s = 1000, 0.008
    alpha_bar = torch.cumprod(1 - betas_cosine(T, s), 0)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 250, 500, 900):
        assert alpha_bar[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert betas_cosine(T, s, max_beta=0.999).max().item() == pytest.approx(0.999)


@pytest.mark.parametrize("ztsnr", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_alpha_bar_strictly_decreasing_in_unit_interval(kind, ztsnr):
    sched = NoiseSchedule(kind, 1000, zero_terminal_snr=ztsnr)
    ab = sched.alphas_cumprod
    assert (ab.diff() < 0).all()
    assert (ab < 1).all()
    assert (ab[:-1] > 0).all()
    assert ab[-1] == 0 if ztsnr else ab[-1] > 0
    assert (sched.log_sigmas.diff() > 0).all() and math.isfinite(sched.sigma_max)


def test_known_terminal_values_from_the_literature():
    # Lin et al. 2024, Table 1: sqrt(alpha_bar_T) of DDPM's linear and Stable Diffusion's schedule.
    assert NoiseSchedule("linear").alphas_cumprod[-1].sqrt().item() == pytest.approx(0.006353, abs=2e-6)
    sd = NoiseSchedule("scaled_linear")
    assert sd.alphas_cumprod[-1].sqrt().item() == pytest.approx(0.068265, abs=2e-6)
    # k-diffusion's sigma range for Stable Diffusion.
    assert sd.sigma_max == pytest.approx(14.6146, abs=1e-3)
    assert sd.sigma_min == pytest.approx(0.0292, abs=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_zero_terminal_snr_rescale(kind):
    betas = BETA_SCHEDULES[kind]()
    before = torch.cumprod(1 - betas, 0)
    after = torch.cumprod(1 - rescale_zero_terminal_snr(betas), 0)
    assert after[-1].item() == 0.0
    assert after[0].item() == pytest.approx(before[0].item(), rel=1e-12)
    assert (after.diff() < 0).all()


def test_zero_terminal_snr_schedule_clamps_only_the_sigma():
    sched = NoiseSchedule("scaled_linear", zero_terminal_snr=True)
    assert sched.sigmas[-2] < sched.sigma_max
    assert sched.snr(torch.tensor([999])).item() == 0.0
    alpha, sigma = sched.alpha_sigma(torch.tensor([999]))
    assert alpha.item() == 0.0 and sigma.item() == 1.0
    expected = math.sqrt((1 - TERMINAL_ALPHA_BAR) / TERMINAL_ALPHA_BAR)
    assert sched.sigma_max == pytest.approx(expected, rel=1e-6)


def test_zero_terminal_snr_keeps_sigmas_ascending_when_clamp_would_not():
    # Rescaled linear has alpha_bar[-2] ~ 4e-9 < 2**-24: the last sigma continues geometrically.
    sched = NoiseSchedule("linear", zero_terminal_snr=True)
    ratio = sched.sigmas[-1] / sched.sigmas[-2]
    assert ratio.item() == pytest.approx((sched.sigmas[-2] / sched.sigmas[-3]).item(), rel=1e-4)


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(ValueError, match="linear.*scaled_linear.*cosine"):
        NoiseSchedule("quadratic")


@pytest.mark.parametrize("factor", [0.5, 2.0, 4.0])
def test_snr_shift_divides_snr_and_keeps_a_zero_terminal_snr(factor):
    base = NoiseSchedule("cosine", zero_terminal_snr=True)
    shifted = NoiseSchedule("cosine", zero_terminal_snr=True, snr_shift=factor)
    t = torch.tensor([0, 100, 500, 900])
    # float32 alpha_bar near 1 limits the precision at t = 0
    torch.testing.assert_close(shifted.snr(t), base.snr(t) / factor**2, rtol=3e-3, atol=0)
    assert shifted.snr(torch.tensor([999])).item() == 0.0
    assert bool((shifted.sigmas.diff() > 0).all())  # still ascending
    # sigma (VE) scales with the factor away from the clamped terminal step
    torch.testing.assert_close(shifted.sigmas[:-1], base.sigmas[:-1] * factor, rtol=3e-3, atol=0)


def test_snr_shift_must_be_positive():
    with pytest.raises(ValueError, match="snr_shift must be positive, got 0"):
        NoiseSchedule("cosine", snr_shift=0)


def test_vp_coefficients_snr_and_sigmas_agree():
    sched = NoiseSchedule("cosine")
    t = torch.tensor([0, 10, 500, 998])
    alpha, sigma = sched.alpha_sigma(t)
    assert torch.allclose(alpha**2 + sigma**2, torch.ones(4))
    assert torch.allclose(sched.snr(t), alpha**2 / sigma**2, rtol=1e-4)
    # alpha_bar is stored in float32, so sigma = sqrt(1 - alpha_bar) is only ~1e-3 accurate at t = 0.
    assert torch.allclose(sched.sigmas[t], sigma / alpha, rtol=2e-3)
    assert sched.num_timesteps == 1000


@pytest.mark.parametrize("shape", [(3, 2, 5), (3, 2, 4, 4), (3, 1, 2, 3, 4)])
def test_add_noise_broadcasts_over_any_rank(shape):
    sched = NoiseSchedule()
    x0, noise = torch.randn(shape), torch.randn(shape)
    t = torch.tensor([0, 400, 999])
    xt = sched.add_noise(x0, noise, t)
    for b in range(3):
        a, s = sched.alpha_sigma(t[b])
        assert torch.allclose(xt[b], a * x0[b] + s * noise[b])
    assert torch.allclose(xt[0], x0[0], atol=0.05)  # t = 0 keeps nearly all signal


def test_sigma_to_t_inverts_t_to_sigma():
    sched = NoiseSchedule("linear")
    t = torch.rand(200, generator=torch.Generator().manual_seed(0)) * 999
    assert torch.allclose(sched.sigma_to_t(sched.t_to_sigma(t)), t, atol=1e-3)
    ints = torch.tensor([0, 1, 37, 500, 999])
    assert torch.allclose(sched.sigma_to_t(sched.sigmas[ints]), ints.float(), atol=1e-3)
    assert torch.allclose(sched.t_to_sigma(ints.float()), sched.sigmas[ints])
    halfway = sched.t_to_sigma(torch.tensor([10.5]))
    assert halfway.item() == pytest.approx(math.sqrt(sched.sigmas[10].item() * sched.sigmas[11].item()), rel=1e-5)


def test_sigma_to_t_clamps_to_the_schedule():
    sched = NoiseSchedule()
    t = sched.sigma_to_t(torch.tensor([0.0, 1e-6, 1e6]))
    assert t.tolist() == [0.0, 0.0, 999.0]


# Lin et al. 2024, Table 2 (T = 1000, 10 steps).
EXPECTED_TIMESTEPS = {
    "trailing": [999, 899, 799, 699, 599, 499, 399, 299, 199, 99],
    "leading": [900, 800, 700, 600, 500, 400, 300, 200, 100, 0],
    "linspace": [999, 888, 777, 666, 555, 444, 333, 222, 111, 0],
}


@pytest.mark.parametrize("spacing", sorted(EXPECTED_TIMESTEPS))
def test_discrete_spacings_pick_the_published_timesteps(spacing):
    sched = NoiseSchedule()
    sigmas = sigmas_for_steps(sched, 10, spacing)
    expected = sched.sigmas[torch.tensor(EXPECTED_TIMESTEPS[spacing])]
    assert torch.equal(sigmas[:-1], expected)


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace", "karras"])
@pytest.mark.parametrize("steps", [1, 7, 50])
def test_sampling_sigmas_descend_to_zero(spacing, steps):
    sigmas = sigmas_for_steps(NoiseSchedule("scaled_linear"), steps, spacing)
    assert sigmas.shape == (steps + 1,)
    assert sigmas[-1].item() == 0.0
    assert (sigmas.diff() < 0).all()


def test_trailing_and_karras_start_at_sigma_max():
    sched = NoiseSchedule()
    for spacing in ("trailing", "karras"):
        assert sigmas_for_steps(sched, 20, spacing)[0].item() == pytest.approx(sched.sigma_max)
    assert sigmas_for_steps(sched, 20, "karras")[-2].item() == pytest.approx(sched.sigma_min)


def test_karras_sigmas_endpoints_and_rho_spacing():
    sigmas = karras_sigmas(0.002, 80.0, 12, rho=7.0)
    assert sigmas[0].item() == pytest.approx(80.0, rel=1e-6)
    assert sigmas[-1].item() == pytest.approx(0.002, rel=1e-6)
    steps = sigmas.double().pow(1 / 7).diff()
    assert torch.allclose(steps, steps[0].expand_as(steps), rtol=1e-4)


def test_bad_spacing_and_steps_raise():
    sched = NoiseSchedule(num_timesteps=100)
    with pytest.raises(ValueError, match="trailing, leading, linspace, karras"):
        sigmas_for_steps(sched, 10, "uniform")
    with pytest.raises(ValueError, match="exceed"):
        sigmas_for_steps(sched, 101, "trailing")
    with pytest.raises(ValueError, match="at least 1"):
        sigmas_for_steps(sched, 0)


def test_schedule_is_config_not_weights():
    sched = NoiseSchedule()
    assert sched.state_dict() == {}
    assert {name for name, _ in sched.named_buffers()} == {"alphas_cumprod", "sigmas", "log_sigmas"}
