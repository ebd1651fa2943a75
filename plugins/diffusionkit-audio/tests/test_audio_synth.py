"""Deterministic drum and melody synthesis: shapes, determinism and measured acoustic facts."""

from __future__ import annotations

import numpy as np
import pytest
from diffusionkit_audio.synth_drums import DRUM_CLASSES, DRUM_VOICES, synth_drum
from diffusionkit_audio.synth_melodies import SCALES, TIMBRES, midi_to_hz, random_phrase, render_phrase
from scipy.signal import find_peaks

SR, N = 16000, 16128
FREQS = np.fft.rfftfreq(N, 1.0 / SR)


def drums(name: str, count: int = 24, seed: int = 0) -> np.ndarray:
    """``count`` one-shots of class ``name`` as ``[count, N]``."""
    return np.stack([synth_drum(name, np.random.default_rng([seed, i]), SR, N) for i in range(count)])


def power(waves: np.ndarray) -> np.ndarray:
    return np.abs(np.fft.rfft(waves, axis=-1)) ** 2


def centroid(waves: np.ndarray) -> np.ndarray:
    """Spectral centroid in Hz, per wave."""
    p = power(waves)
    return (p * FREQS).sum(-1) / p.sum(-1)


def energy_after(waves: np.ndarray, seconds: float) -> np.ndarray:
    """Fraction of each wave's energy after ``seconds``."""
    return (waves[:, int(seconds * SR):] ** 2).sum(-1) / (waves**2).sum(-1)


def peak_hz(waves: np.ndarray) -> np.ndarray:
    return FREQS[power(waves).argmax(-1)]


# --- drums: format --------------------------------------------------------------------------


def test_drum_registry_matches_classes():
    """Eight classes, one voice each, and unknown names are rejected."""
    assert DRUM_CLASSES == ("kick", "snare", "clap", "closed_hat", "open_hat", "tom", "crash", "rim")
    assert tuple(DRUM_VOICES) == DRUM_CLASSES
    with pytest.raises(ValueError, match="unknown drum class"):
        synth_drum("cowbell", np.random.default_rng(0), SR, N)


@pytest.mark.parametrize("name", DRUM_CLASSES)
def test_drum_format_peak_mean_and_fade(name):
    """float32 [N], finite, peak exactly 0.9, near zero mean, silent last sample (faded out)."""
    waves = drums(name, 8)
    assert waves.shape == (8, N) and waves.dtype == np.float32
    assert np.isfinite(waves).all()
    np.testing.assert_allclose(np.abs(waves).max(-1), 0.9, atol=1e-6)
    assert np.abs(waves.mean(-1)).max() < 0.005
    assert np.abs(waves[:, -1]).max() < 1e-3
    assert np.abs(waves[:, -16:]).max() < 0.01  # the last ms is inside the fade


@pytest.mark.parametrize("name", DRUM_CLASSES)
def test_drum_is_deterministic_per_seed(name):
    """The same generator seed gives identical samples; another seed gives a clearly different hit."""
    a = synth_drum(name, np.random.default_rng(7), SR, N)
    assert np.array_equal(a, synth_drum(name, np.random.default_rng(7), SR, N))
    assert np.abs(a - synth_drum(name, np.random.default_rng(8), SR, N)).mean() > 1e-3


def test_drum_works_at_other_rates_and_lengths():
    """Voices adapt to the sample rate (bands stay below Nyquist) and any length."""
    for name in DRUM_CLASSES:
        for sr, n in ((8000, 4000), (44100, 22050)):
            w = synth_drum(name, np.random.default_rng(0), sr, n)
            assert w.shape == (n,) and np.isfinite(w).all() and abs(np.abs(w).max() - 0.9) < 1e-6


# --- drums: acoustics -----------------------------------------------------------------------


def test_kick_is_darkest_and_hats_brightest():
    """Spectral centroids: kicks < 120 Hz; snares, hats and crashes > 2 kHz (hats > 5 kHz); claps ~1-2 kHz."""
    c = {name: centroid(drums(name)) for name in DRUM_CLASSES}
    assert c["kick"].max() < 120
    for bright in ("snare", "closed_hat", "open_hat", "crash"):
        assert c[bright].min() > 2000, bright
        assert c[bright].min() > 20 * c["kick"].max(), bright
    assert min(c["closed_hat"].min(), c["open_hat"].min()) > 5000
    assert 800 < np.median(c["clap"]) < 2500  # band-passed around 1-2 kHz


def test_kick_tom_snare_rim_pitches():
    """Dominant frequencies: kick settles at 40-55 Hz, tom 80-250 Hz, snare head 180-250 Hz, rim 400-1800 Hz."""
    assert 38 < peak_hz(drums("kick")).min() and peak_hz(drums("kick")).max() < 57
    assert 78 < peak_hz(drums("tom")).min() and peak_hz(drums("tom")).max() < 255
    rim = peak_hz(drums("rim"))
    assert 390 < rim.min() and rim.max() < 1850


def test_hat_and_cymbal_decays():
    """Closed hat and rim are gone after 200 ms; open hat keeps >3 %; crash rings longest (>40 % after 200 ms)."""
    closed, open_, crash = (energy_after(drums(n), 0.2) for n in ("closed_hat", "open_hat", "crash"))
    assert closed.max() < 1e-3
    assert energy_after(drums("rim"), 0.1).max() < 1e-3
    assert open_.min() > 0.03
    assert crash.min() > 0.4
    assert np.median(energy_after(drums("crash"), 0.5)) > 5 * np.median(energy_after(drums("open_hat"), 0.5))


def test_clap_has_several_bursts():
    """A clap shows >= 3 prominent 2 ms-RMS peaks in its first 70 ms; snares, closed hats and rims do not."""

    def bursts(wave: np.ndarray) -> int:
        env = np.sqrt((wave[: N // 32 * 32].reshape(-1, 32) ** 2).mean(-1))[: int(0.07 * SR / 32)]
        return len(find_peaks(np.r_[0.0, env], prominence=0.25 * env.max())[0])

    assert np.mean([bursts(w) >= 3 for w in drums("clap", 30)]) >= 0.9
    for name in ("snare", "closed_hat", "rim"):
        assert np.mean([bursts(w) >= 3 for w in drums(name, 30)]) <= 0.1, name


def test_nearest_centroid_separates_drum_classes():
    """Class centroids of log-spectrogram features from 400 hits classify 400 fresh hits >= 90 % right."""

    def features(waves: np.ndarray) -> np.ndarray:
        frames = waves[:, : N // 256 * 256].reshape(len(waves), -1, 256) * np.hanning(256)
        spec = np.abs(np.fft.rfft(frames, axis=-1)) ** 2  # [items, 63 frames, 129 bins]
        pooled = np.stack([chunk.mean(1) for chunk in np.array_split(spec, 4, axis=1)], 1)  # 4 time segments
        return np.log(pooled + 1e-8).reshape(len(waves), -1)

    def make(seed: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(400) % 8
        waves = np.stack([synth_drum(DRUM_CLASSES[c], np.random.default_rng([seed, i]), SR, N)
                          for i, c in enumerate(labels)])
        return features(waves), labels

    (train_x, train_y), (test_x, test_y) = make(0), make(1)
    centroids = np.stack([train_x[train_y == c].mean(0) for c in range(8)])
    predicted = ((test_x[:, None] - centroids[None]) ** 2).sum(-1).argmin(-1)
    accuracy = (predicted == test_y).mean()
    assert accuracy >= 0.9, accuracy
    assert all((predicted[test_y == c] == c).mean() >= 0.7 for c in range(8))


# --- melodies -------------------------------------------------------------------------------


def test_random_phrase_structure():
    """4-8 sorted, non-overlapping notes inside the clip, MIDI 55-79, note slots from a rhythm grid."""
    for seed in range(200):
        duration = [1.008, 2.0, 4.0][seed % 3]
        phrase = random_phrase(np.random.default_rng(seed), duration)
        assert 4 <= len(phrase) <= 8
        assert all(0.0 <= s < e <= duration and 55 <= p <= 79 and isinstance(p, int) for s, e, p in phrase)
        assert all(a[1] <= b[0] for a, b in zip(phrase, phrase[1:]))
        onsets = np.array([s for s, _, _ in phrase])
        if len(onsets) > 2:
            ratios = np.diff(onsets) / np.diff(onsets).min()  # slots are multiples of a half of the shortest
            np.testing.assert_allclose(ratios * 2, np.round(ratios * 2), atol=1e-6)


def test_random_phrase_stays_in_scale():
    """With a given scale and root every pitch class lies in it; random phrases fit some listed scale."""
    for seed in range(50):
        for scale in SCALES:
            phrase = random_phrase(np.random.default_rng(seed), 2.0, scale=scale, root=62)
            assert {(p - 62) % 12 for _, _, p in phrase} <= set(SCALES[scale]), scale
        pcs = {p % 12 for _, _, p in random_phrase(np.random.default_rng(seed), 2.0)}
        assert any(pcs <= {(r + i) % 12 for i in s} for s in SCALES.values() for r in range(12))


def test_random_phrase_is_deterministic():
    a = random_phrase(np.random.default_rng(3), 2.0)
    assert a == random_phrase(np.random.default_rng(3), 2.0)
    assert a != random_phrase(np.random.default_rng(4), 2.0)


@pytest.mark.parametrize("timbre", TIMBRES)
def test_render_format_and_determinism(timbre):
    """float32 [N], finite, peak 0.9, silent before the first note; same rng -> same samples."""
    phrase = random_phrase(np.random.default_rng(1), N / SR)
    a = render_phrase(phrase, timbre, np.random.default_rng(5), SR, N)
    assert a.shape == (N,) and a.dtype == np.float32 and np.isfinite(a).all()
    assert abs(np.abs(a).max() - 0.9) < 1e-6
    assert np.abs(a[: int(phrase[0][0] * SR) - 1]).max(initial=0.0) == 0.0
    assert np.abs(a[-1]) < 1e-3
    assert np.array_equal(a, render_phrase(phrase, timbre, np.random.default_rng(5), SR, N))
    assert not np.array_equal(a, render_phrase(random_phrase(np.random.default_rng(2), N / SR), timbre,
                                               np.random.default_rng(5), SR, N))


def test_render_rejects_unknown_timbre_and_empty_phrase_is_silent():
    with pytest.raises(ValueError, match="unknown timbre"):
        render_phrase([(0.0, 0.5, 60)], "kazoo", np.random.default_rng(0), SR, N)
    assert not render_phrase([], "sine", np.random.default_rng(0), SR, N).any()


def test_sine_first_note_is_the_strongest_peak():
    """The first note of a phrase rendered alone peaks within a semitone of its pitch (sine, square, saw)."""
    for seed in range(10):
        rng = np.random.default_rng(seed)
        first = random_phrase(rng, N / SR)[:1]
        for timbre in ("sine", "square", "saw"):
            wave = render_phrase(first, timbre, rng, SR, N)
            error = 12 * np.log2(peak_hz(wave[None])[0] / midi_to_hz(first[0][2]))
            assert abs(error) < 1.0, (timbre, first, error)


def _off_harmonic(wave: np.ndarray, f0: float) -> float:
    """Fraction of power more than 15 Hz away from every harmonic of ``f0``."""
    p, h = power(wave[None])[0], FREQS / f0
    return p[np.abs(h - np.round(h)) * f0 > 15].sum() / p.sum()


def test_square_and_saw_are_band_limited_and_bell_is_inharmonic():
    """G5 (784 Hz): square/saw keep > 97 % on the harmonic grid (a naive saw aliases ~6 % off it); square
    has no even harmonics, saw's 2nd harmonic is ~1/4 of the fundamental's power; the FM bell is inharmonic."""
    pitch, f0 = 79, midi_to_hz(79)
    note = [(0.0, 0.9, pitch)]
    waves = {t: render_phrase(note, t, np.random.default_rng(0), SR, N) for t in TIMBRES}
    for timbre in ("square", "saw"):
        assert _off_harmonic(waves[timbre], f0) < 0.03, timbre
    band = lambda w, f: power(w[None])[0][np.abs(FREQS - f) < 10].sum()  # noqa: E731
    assert band(waves["square"], 2 * f0) < 1e-3 * band(waves["square"], f0)
    assert 0.15 < band(waves["saw"], 2 * f0) / band(waves["saw"], f0) < 0.35
    assert _off_harmonic(waves["bell"], f0) > 0.3


def test_pluck_is_tuned_and_decays():
    """Karplus-Strong: the lowest strong spectral peak is the fundamental (within a semitone); it decays."""
    for pitch in (55, 64, 72, 79):
        wave = render_phrase([(0.0, 0.95, pitch)], "pluck", np.random.default_rng(pitch), SR, N)
        p = power(wave[None])[0]
        lowest = FREQS[np.flatnonzero(p > 0.1 * p.max())[0]]
        assert abs(12 * np.log2(lowest / midi_to_hz(pitch))) < 1.0, pitch
        assert (wave[8000:12000] ** 2).sum() < 0.2 * (wave[:4000] ** 2).sum()
