"""The shipped starter bundle, written before the model was split from Lightning (issue 14), still
loads and makes the very samples it made then: the figures below were recorded with the old
``DiffusionModule`` (``load_model("drums_starter").module``) before the change."""

from __future__ import annotations

import pytest
import torch

from diffusionkit.bundle import load_model
from diffusionkit.diffusion.model import DiffusionModel


@pytest.fixture(scope="module")
def starter() -> DiffusionModel:
    return load_model("drums_starter", device="cpu", precision="fp32").module


def figures(x: torch.Tensor) -> tuple[float, float]:
    return float(x.double().sum()), float(x.double().abs().sum())


def test_the_starter_samples_as_before_the_split(starter):
    assert isinstance(starter, DiffusionModel)
    x = starter.sample(2, torch.tensor([0, 1]), steps=4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 1, 96, 64)
    assert figures(x) == pytest.approx((-7398.979435, 7748.159293), rel=1e-6)
    assert x.flatten()[:4].tolist() == pytest.approx([0.031204, 0.449627, 0.765717, 0.661438], abs=1e-5)
    varied = starter.sample(2, None, steps=4, init=x, strength=0.5, guidance_scale=2.0,
                            generator=torch.Generator().manual_seed(1))
    # guided and channels-last (since load_model samples so in fp32 too), it moves by 1.4e-6 of itself
    assert figures(varied) == pytest.approx((-7189.976529, 7355.156329), rel=1e-5)
    inverted = starter.invert(x, torch.tensor([0, 1]), steps=4)
    # inversion ends far outside the data's range, where the signed sum cancels (it is 1% of the absolute
    # sum): float32 rounding (AVX2 or AVX-512, channels-last or not) moves it by up to ~1e-6 of the
    # absolute sum, so it is judged on that scale; the absolute sum itself holds to 2e-6
    total, magnitude = figures(inverted)
    assert magnitude == pytest.approx(39131330.980407, rel=2e-6)
    assert abs(total - 375641.602915) <= 2e-6 * magnitude
