"""Noise priors: the iid default reproduces torch's draws, the mixed prior has the variance split
it promises, and the DiffusionModel draws every noise (training and sampling) from its prior."""

import pytest
import torch

from diffusionkit.diffusion.noise import GAUSSIAN, MixedNoise
from tests.test_diffusion_module import tiny_model


def correlation_along(noise: torch.Tensor, dim: int) -> float:
    """Mean correlation between neighbours along ``dim``."""
    a, b = noise.narrow(dim, 0, noise.shape[dim] - 1), noise.narrow(dim, 1, noise.shape[dim] - 1)
    return torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()


def test_gaussian_prior_is_torch_randn_on_the_generator_device():
    drawn = GAUSSIAN.sample((3, 2, 5), generator=torch.Generator().manual_seed(4))
    assert torch.equal(drawn, torch.randn((3, 2, 5), generator=torch.Generator().manual_seed(4)))
    like = GAUSSIAN.like(torch.empty(2, 1, 4, dtype=torch.float64), torch.Generator().manual_seed(0))
    assert like.dtype == torch.float64 and like.shape == (2, 1, 4)


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.8])
def test_mixed_noise_has_unit_variance_and_shares_the_given_fraction_along_its_axis(fraction):
    prior = MixedNoise(shared_fraction=fraction, shared_axes=[0])
    noise = prior.sample((64, 2, 16, 8, 8), generator=torch.Generator().manual_seed(0))
    assert noise.shape == (64, 2, 16, 8, 8)
    assert noise.std().item() == pytest.approx(1.0, abs=0.02)
    assert noise.mean().item() == pytest.approx(0.0, abs=0.02)
    assert correlation_along(noise, 2) == pytest.approx(fraction, abs=0.03)  # the shared (time) axis
    assert correlation_along(noise, 3) == pytest.approx(0.0, abs=0.03)  # the others stay independent
    assert correlation_along(noise, 1) == pytest.approx(0.0, abs=0.03)  # and so do channels


def test_fully_shared_noise_repeats_along_every_shared_axis():
    noise = MixedNoise(shared_fraction=1.0, shared_axes=[0, 2]).sample((2, 1, 4, 3, 5))
    assert torch.equal(noise, noise[:, :, :1, :, :1].expand_as(noise))
    assert not torch.equal(noise[:, :, :, 0], noise[:, :, :, 1])


@pytest.mark.parametrize("kwargs,message", [
    ({"shared_fraction": 1.5}, r"shared_fraction must be in \[0, 1\], got 1.5"),
    ({"shared_axes": []}, r"shared_axes must be distinct spatial axes"),
    ({"shared_axes": [0, 0]}, r"shared_axes must be distinct spatial axes"),
    ({"shared_axes": [-1]}, r"shared_axes must be distinct spatial axes"),
])
def test_mixed_noise_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MixedNoise(**kwargs)


def test_mixed_noise_names_a_missing_axis():
    message = r"shared_axes \[2\] do not exist in items of shape \[1, 8\] \(1 spatial axes: 0 to 0\)"
    with pytest.raises(ValueError, match=message):
        MixedNoise(shared_axes=[2]).sample((2, 1, 8))


class ZeroNet(torch.nn.Module):
    """Predicts x0 = 0 everywhere and keeps every input it sees: a sampler's states then hold
    only the noise it drew (scaled), so its structure shows in them."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x, t, **cond):
        self.inputs.append(x.detach().clone())
        return torch.zeros_like(x)


def shared_along_first_axis(x: torch.Tensor) -> bool:
    return torch.allclose(x, x[:, :, :1].expand_as(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("prior,shared", [(MixedNoise(shared_fraction=1.0), True), (None, False)])
def test_training_noise_comes_from_the_prior(prior, shared):
    module = tiny_model(2, 8, noise_prior=prior)
    module.net.backbone = ZeroNet()
    module.loss({"x": torch.zeros(4, 1, 8, 8), "label": torch.tensor([0, 1, 0, 1])})
    (x_t,) = module.net.backbone.inputs
    assert shared_along_first_axis(x_t) is shared  # zero data: x_t is sigma times the noise


HALF_KNOWN = torch.zeros(1, 1, 8, 8)
HALF_KNOWN[:, :, :4] = 1


@pytest.mark.parametrize("kwargs,calls", [
    ({"sampler": "ddpm"}, 4),  # the start and every ancestral step's fresh noise
    ({"sampler": "ddpm", "init": torch.zeros(3, 1, 8, 8), "strength": 0.5}, 2),  # an SDEdit start
    ({"sampler": "euler", "known": torch.zeros(3, 1, 8, 8), "mask": HALF_KNOWN}, 4),  # known half: the same draw
])
@pytest.mark.parametrize("prior,shared", [(MixedNoise(shared_fraction=1.0), True), (None, False)])
def test_every_sampling_draw_comes_from_the_prior(kwargs, calls, prior, shared):
    module = tiny_model(2, 8, prediction="x0", noise_prior=prior)
    module.ema.module.backbone = ZeroNet()
    module.sample(3, torch.tensor([0, 1, 0]), steps=4, spacing="trailing",
                  generator=torch.Generator().manual_seed(0), **kwargs)
    inputs = module.ema.module.backbone.inputs
    assert len(inputs) == calls
    assert [shared_along_first_axis(x) for x in inputs] == [shared] * calls


def test_noise_group_composes_to_the_prior_the_module_gets():
    from diffusionkit.config import compose_config
    from diffusionkit.build import build_diffusion_model, build_modality

    cfg = compose_config("train", ["modality=toy", "data=toy_blobs", "noise=mixed",
                                   "diffusion.noise.shared_fraction=0.25", "diffusion.noise.shared_axes=[1]"])
    module = build_diffusion_model(cfg, build_modality(cfg), num_classes=10)
    assert isinstance(module.noise_prior, MixedNoise)
    assert (module.noise_prior.shared_fraction, module.noise_prior.shared_axes) == (0.25, (1,))
    default = compose_config("train", ["modality=toy", "data=toy_blobs"])
    assert default.diffusion.noise._target_ == "diffusionkit.diffusion.noise.GaussianNoise"


def test_a_shared_axis_the_data_lacks_is_one_line_before_training(capsys, tmp_path):
    from diffusionkit.cli import main

    out = tmp_path / "run"
    assert main(["train", "modality=toy", "data=toy_blobs", "noise=mixed", "diffusion.noise.shared_axes=[2]",
                 f"out={out}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("diffusionkit train: error: diffusion.noise: shared_axes [2] do not exist in items of "
                   "shape [1, 32, 32] (2 spatial axes: 0 to 1)")
    assert not (out / "checkpoints").exists()
