"""Audio augmentations in model space: shapes and silence kept, each change what its name says."""

from __future__ import annotations

import pytest
import torch

from diffusionkit_audio.modality import AudioModality


@pytest.fixture(scope="module")
def mel():
    return AudioModality(sample_rate=16000, clip_seconds=0.5)


def a_hit(modality: AudioModality) -> torch.Tensor:
    """A decaying noise burst that starts 0.1 s in (silence before it)."""
    t = torch.arange(modality.num_samples) / modality.sample_rate
    wave = torch.randn(modality.num_samples, generator=torch.Generator().manual_seed(0)) * torch.exp(-(t - 0.1) * 20)
    return modality.encode_wave((wave * (t >= 0.1)).numpy() * 0.5)


def test_the_mel_codec_offers_five_transforms_and_stft_three(mel):
    assert list(mel.augmentations()) == ["gain", "eq_tilt", "time_shift", "pitch_shift", "noise"]
    assert list(AudioModality(codec="stft", clip_seconds=0.5).augmentations()) == ["gain", "eq_tilt", "time_shift"]


@pytest.mark.parametrize("name", ["gain", "eq_tilt", "time_shift", "pitch_shift", "noise"])
def test_each_transform_keeps_the_shape_and_range(mel, name):
    x = a_hit(mel)
    y = mel.augmentations()[name](x, torch.Generator().manual_seed(3))
    assert y.shape == x.shape and torch.isfinite(y).all() and y.min() >= -1 and y.max() <= 1


def test_gain_moves_every_sounding_bin_by_the_same_level_and_keeps_silence(mel):
    x = a_hit(mel)
    y = mel.augmentations()["gain"](x, torch.Generator().manual_seed(1), db=6.0)
    sounding = (x > -0.9) & (x < 0.9)
    change_db = (mel.codec.power_db(y) - mel.codec.power_db(x))[sounding]
    assert change_db.std() < 1e-3 and 0 < change_db.abs().mean() <= 6.0
    assert torch.equal(y[x <= -1], x[x <= -1])


def test_time_shift_delays_the_onset(mel):
    x = a_hit(mel)
    y = mel.augmentations()["time_shift"](x, torch.Generator().manual_seed(0), frames=3)
    onset = lambda item: int((item.amax(dim=(0, 1)) > -0.5).nonzero()[0])  # noqa: E731
    assert 0 <= onset(y) - onset(x) <= 3


def test_eq_tilt_changes_the_level_along_a_ramp_over_the_bins(mel):
    x = a_hit(mel)
    y = mel.augmentations()["eq_tilt"](x, torch.Generator().manual_seed(2), db=12.0)
    change = mel.codec.power_db(y) - mel.codec.power_db(x)
    sounding = ((x > -0.9) & (x < 0.9) & (y > -0.9) & (y < 0.9))[0]
    per_bin = torch.stack([change[0, b][sounding[b]].mean() for b in range(x.shape[1])])
    steps = per_bin.diff()
    assert steps.abs().mean() > 0.01 and float(steps.std()) < 1e-3  # one slope: a ramp
