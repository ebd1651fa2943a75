"""Generated audio datasets: drums and melodies through a stub modality."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from diffusionkit_audio.datasets import DrumsDataset, GeneratedAudioDataset, MelodiesDataset
from diffusionkit_audio.synth_drums import DRUM_CLASSES, synth_drum
from diffusionkit_audio.synth_melodies import TIMBRES, random_phrase, render_phrase


class StubModality:
    """Just what the datasets use: 16 kHz, 16128 samples, and a log-magnitude STFT as ``[1, 64, 64]``."""

    sample_rate, num_samples = 16000, 16128

    def __init__(self) -> None:
        self.calls = 0

    def encode_wave(self, wave: np.ndarray) -> torch.Tensor:
        self.calls += 1
        assert wave.shape == (self.num_samples,) and wave.dtype == np.float32
        spec = torch.stft(torch.from_numpy(wave), n_fft=126, hop_length=256, window=torch.hann_window(126),
                          return_complex=True)
        return spec.abs().add(1e-5).log()[None]


@pytest.fixture(scope="module")
def drums():
    return DrumsDataset(StubModality(), per_class=50, seed=0)


@pytest.fixture(scope="module")
def melodies():
    return MelodiesDataset(StubModality(), per_class=6, seed=0)


def test_drums_length_classes_labels_and_shapes(drums):
    """8 * 50 items, labels cycle 0..7, x is the modality's [1, 64, 64], waves are [400, 16128] float32."""
    assert drums.classes == list(DRUM_CLASSES)
    assert len(drums) == 400
    items = [drums[i] for i in range(len(drums))]
    assert [item["label"] for item in items] == [i % 8 for i in range(400)]
    assert Counter(item["label"] for item in items) == {c: 50 for c in range(8)}
    assert all(item["x"].shape == (1, 64, 64) and item["x"].dtype == torch.float32 for item in items)
    assert isinstance(items[0]["label"], int)
    assert drums.waves.shape == (400, 16128) and drums.waves.dtype == np.float32
    assert np.isfinite(drums.waves).all()
    np.testing.assert_allclose(np.abs(drums.waves).max(-1), 0.9, atol=1e-6)


def test_drums_x_is_the_encoded_wave(drums):
    """Item i is encode_wave(waves[i]), and waves[i] is synth_drum(class, default_rng([seed, i]))."""
    stub = StubModality()
    for i in (0, 13, 399):
        assert torch.equal(drums[i]["x"], stub.encode_wave(drums.waves[i]))
        expected = synth_drum(DRUM_CLASSES[i % 8], np.random.default_rng([0, i]), 16000, 16128)
        assert np.array_equal(drums.waves[i], expected)
    assert torch.equal(drums[-1]["x"], drums[399]["x"])
    with pytest.raises(IndexError):
        drums[400]


def test_items_depend_only_on_seed_and_index(drums):
    """Eager generation is deterministic; per_class does not change item i; another seed differs."""
    small = DrumsDataset(StubModality(), per_class=2, seed=0)
    assert np.array_equal(small.waves, drums.waves[:16])
    assert all(torch.equal(small[i]["x"], drums[i]["x"]) for i in range(16))
    other = DrumsDataset(StubModality(), per_class=2, seed=1)
    assert all(np.abs(other.waves[i] - small.waves[i]).mean() > 1e-3 for i in range(16))
    assert [other[i]["label"] for i in range(16)] == [small[i]["label"] for i in range(16)]


def test_generation_encodes_each_item_once():
    stub = StubModality()
    DrumsDataset(stub, per_class=3)
    assert stub.calls == 24


def test_melodies_classes_phrases_and_waves(melodies):
    """5 timbres * 6 items; phrases fit the clip; waves are the phrases rendered with the item's timbre."""
    assert melodies.classes == list(TIMBRES)
    assert len(melodies) == 30 and len(melodies.phrases) == 30
    assert melodies.waves.shape == (30, 16128)
    assert [melodies[i]["label"] for i in range(30)] == [i % 5 for i in range(30)]
    assert all(melodies[i]["x"].shape == (1, 64, 64) for i in range(30))
    duration = 16128 / 16000
    for phrase in melodies.phrases:
        assert 4 <= len(phrase) <= 8
        assert all(0 <= s < e <= duration and 55 <= p <= 79 for s, e, p in phrase)
        assert all(a[1] <= b[0] for a, b in zip(phrase, phrase[1:]))
    np.testing.assert_allclose(np.abs(melodies.waves).max(-1), 0.9, atol=1e-6)
    # item 7 (saw): silent before its first note, sounding during it
    start = int(melodies.phrases[7][0][0] * 16000)
    assert np.abs(melodies.waves[7][: max(start - 1, 0)]).max(initial=0.0) == 0.0
    assert np.abs(melodies.waves[7][start: start + 800]).max() > 0.05


def test_melodies_are_deterministic_and_seeded():
    a = MelodiesDataset(StubModality(), per_class=1, seed=4)
    b = MelodiesDataset(StubModality(), per_class=1, seed=4)
    c = MelodiesDataset(StubModality(), per_class=1, seed=5)
    assert a.phrases == b.phrases and np.array_equal(a.waves, b.waves)
    assert a.phrases != c.phrases


def test_melody_wave_matches_render_with_item_rng():
    """waves[i] = render_phrase(phrase, timbre, rng) with the rng that drew the phrase (seed, i)."""
    ds = MelodiesDataset(StubModality(), per_class=1, seed=2)
    for i, timbre in enumerate(TIMBRES):
        rng = np.random.default_rng([2, i])
        phrase = random_phrase(rng, 16128 / 16000)
        assert phrase == ds.phrases[i]
        assert np.array_equal(ds.waves[i], render_phrase(phrase, timbre, rng, 16000, 16128))


@pytest.mark.parametrize(("per_class", "seed"), [(0, 0), (2, -1)])
def test_rejects_bad_arguments(per_class, seed):
    with pytest.raises(ValueError, match="per_class >= 1 and seed >= 0"):
        DrumsDataset(StubModality(), per_class=per_class, seed=seed)


def test_base_class_is_shared():
    assert issubclass(DrumsDataset, GeneratedAudioDataset) and issubclass(MelodiesDataset, GeneratedAudioDataset)
    assert "__getitem__" not in vars(DrumsDataset) and "__getitem__" not in vars(MelodiesDataset)
