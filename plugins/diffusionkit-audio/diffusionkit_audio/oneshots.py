"""One-shot preprocessing: onset alignment, loudness normalisation and outlier filtering.

:func:`prepare_oneshot` turns one sample file into a clip of the model's length that starts at
its onset, or names why it was dropped (a :data:`DROP_REASONS` key and a detail).
:func:`near_duplicates` finds clips that repeat an earlier one (the same sound copied, re-encoded
or at another gain: a velocity layer of the same drum is a new hit and is kept).

The steps, for a file:

1. longer than ``max_file_seconds``: ``too_long`` (a loop or phrase, not a one-shot);
2. unreadable (``audio_io``'s one-line reasons): ``unreadable``, or ``silent`` when the file is;
3. clipping: runs of ``clip_run`` or more identical samples at the file's peak make up more than
   ``max_clipped`` of it: ``clipped``;
4. peak below ``silence_db`` dBFS: ``silent``;
5. onset: the first 5 ms whose RMS comes within ``onset_db`` of the peak, less 5 ms of pre-roll
   (:func:`~diffusionkit_audio.audio_io.trim_leading_silence`); later than ``max_onset_seconds``:
   ``late_onset``;
6. sound (from the onset until the 5 ms RMS last exceeds ``sound_db`` below the peak) shorter than
   ``min_sound_seconds``: ``too_short``;
7. a file that ends inside the clip while its last 5 ms are still within ``cut_off_db`` of the
   peak: ``cut_off`` (its decay was cut, an audible click);
8. the clip (from the onset, cropped or zero-padded) is loudness normalised to ``loudness_db``
   dBFS (peak at most 0.99; ``normalize="peak"`` scales the peak to 0.9, ``"none"`` keeps it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import soundfile as sf

from diffusionkit.modality import MediaError

from .audio_io import file_sample_rate, fit_length, normalize, read_audio, resample, trim_leading_silence

#: why a sample is dropped, in the order the report lists them.
DROP_REASONS = ("unreadable", "silent", "too_long", "too_short", "late_onset", "clipped", "cut_off", "duplicate")
_WINDOW_S = 0.005


@dataclass(frozen=True)
class OneShotOptions:
    """The preprocessing settings (``data.dataset.preprocess``)."""

    normalize: str = "loudness"  # loudness | peak | none
    loudness_db: float = -20.0
    onset_db: float = -30.0
    max_onset_seconds: float = 0.5
    silence_db: float = -60.0
    sound_db: float = -40.0
    min_sound_seconds: float = 0.01
    max_file_seconds: float = 20.0
    clip_run: int = 4
    max_clipped: float = 0.01
    cut_off_db: float = -25.0
    duplicate_correlation: float = 0.998

    def key(self) -> str:
        """A stable text of every setting (for caches)."""
        return repr(sorted(asdict(self).items()))


@dataclass(frozen=True)
class Prepared:
    """A file's clip ``[channels, samples]`` at the model rate, or why there is none; ``descriptors``
    are what :func:`~.captions.descriptors` measured on the clip, once the dataset has."""

    wave: np.ndarray | None
    reason: str | None = None
    detail: str = ""
    onset_seconds: float = 0.0
    descriptors: dict[str, float] | None = None


def _db(value: float) -> float:
    return 20.0 * math.log10(max(value, 1e-12))


def _rms(wave: np.ndarray, rate: int) -> np.ndarray:
    """RMS over the 5 ms ending at each sample (all channels)."""
    window = max(1, round(_WINDOW_S * rate))
    power = np.concatenate([[0.0], np.cumsum(np.mean(wave.astype(np.float64) ** 2, axis=0))])
    index = np.arange(wave.shape[-1])
    low = np.maximum(index + 1 - window, 0)
    return np.sqrt(np.maximum(power[index + 1] - power[low], 0.0) / window)


def clipped_fraction(wave: np.ndarray, run: int) -> float:
    """The share of samples in runs of ``run`` or more equal values at the wave's peak (a flat top)."""
    peak = float(np.abs(wave).max(initial=0.0))
    if peak == 0.0:
        return 0.0
    at_peak = np.abs(wave) >= peak
    flat = at_peak[..., 1:] & (wave[..., 1:] == wave[..., :-1])
    total = 0
    for row in flat:  # runs of equal neighbours at the peak
        padded = np.concatenate([[False], row, [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(padded))
        lengths = edges[1::2] - edges[::2] + 1  # samples per run
        total += int(lengths[lengths >= run].sum())
    return total / wave.size


def _file_seconds(path) -> float | None:
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError):
        return None
    return info.frames / info.samplerate if info.samplerate else None


def _sound_seconds(wave: np.ndarray, rate: int, below_db: float) -> float:
    """From the start until the 5 ms RMS last exceeds ``below_db`` under its peak."""
    rms = _rms(wave, rate)
    loud = np.flatnonzero(rms > rms.max(initial=0.0) * 10 ** (below_db / 20))
    return (int(loud[-1]) + 1) / rate if loud.size else 0.0


def _read(path, channels: int, seconds: float) -> tuple[np.ndarray, int, bool]:
    """The first ``seconds`` at the file's own rate; True when that is all of the file."""
    rate = file_sample_rate(path)
    wave = read_audio(path, rate, channels, seconds=seconds)
    return wave, rate, wave.shape[-1] < math.ceil(seconds * rate)


def prepare_oneshot(path, sample_rate: int, num_samples: int, channels: int, options: OneShotOptions) -> Prepared:
    """A sample file as an onset-aligned, normalised clip ``[channels, num_samples]``, or why not."""
    seconds = _file_seconds(path)
    if seconds is not None and seconds > options.max_file_seconds:
        return Prepared(None, "too_long", f"{seconds:.1f} s (limit {options.max_file_seconds:g} s)")
    clip_seconds = num_samples / sample_rate
    try:
        raw, rate, whole = _read(path, channels, options.max_onset_seconds + clip_seconds)
    except MediaError as err:
        message = str(err)
        return Prepared(None, "silent" if "silent" in message else "unreadable", message)
    return _condition(raw, rate, whole, sample_rate, num_samples, options)


def _condition(raw: np.ndarray, rate: int, whole: bool, sample_rate: int, num_samples: int,
               options: OneShotOptions) -> Prepared:
    """Steps 3-8 of the module docstring on a decoded wave at its own ``rate``."""
    clipped = clipped_fraction(raw, options.clip_run)
    if clipped > options.max_clipped:
        return Prepared(None, "clipped", f"{100 * clipped:.2g}% of samples on a flat top")
    peak = float(np.abs(raw).max())
    if _db(peak) < options.silence_db:
        return Prepared(None, "silent", f"peak {_db(peak):.0f} dBFS")
    onset = raw.shape[-1] - trim_leading_silence(raw, rate, threshold_db=options.onset_db).shape[-1]
    if onset / rate > options.max_onset_seconds:
        return Prepared(None, "late_onset", f"sound starts at {onset / rate:.2f} s")
    aligned = raw[..., onset:]
    sound = _sound_seconds(aligned, rate, options.sound_db)
    if sound < options.min_sound_seconds:
        return Prepared(None, "too_short", f"{1e3 * sound:.1f} ms of sound")
    if whole and aligned.shape[-1] < num_samples * rate / sample_rate:
        tail = _db(float(_rms(aligned[..., -max(1, round(_WINDOW_S * rate)):], rate)[-1])) - _db(peak)
        if tail > options.cut_off_db:
            return Prepared(None, "cut_off", f"the file ends {-tail:.0f} dB below its peak, inside the clip")
    kept = aligned[..., : math.ceil(num_samples * rate / sample_rate) + 64]
    clip = fit_length(resample(kept, rate, sample_rate), num_samples)
    return Prepared(normalize(clip, options.normalize, loudness_db=options.loudness_db).astype(np.float32),
                    onset_seconds=onset / rate)


# ---------------------------------------------------------------------------- near-duplicates


def fingerprint(wave: np.ndarray, sample_rate: int, bands: int = 32, frames: int = 16) -> np.ndarray:
    """A coarse log spectrogram (``bands`` log-spaced bands x ``frames`` time steps), standardised."""
    n_fft = 512
    mono = np.asarray(wave, dtype=np.float64).reshape(-1, wave.shape[-1]).mean(axis=0)
    mono = np.pad(mono, (0, max(0, n_fft * 2 - mono.size)))
    hop = max(1, (mono.size - n_fft) // (4 * frames))
    segments = np.lib.stride_tricks.sliding_window_view(mono, n_fft)[::hop]
    power = np.abs(np.fft.rfft(segments * np.hanning(n_fft), axis=1)) ** 2
    which = np.searchsorted(np.geomspace(40.0, sample_rate / 2, bands + 1), np.fft.rfftfreq(n_fft, 1 / sample_rate))
    banded = power @ (np.clip(which - 1, 0, bands - 1)[:, None] == np.arange(bands)[None, :])
    pooled = np.stack([chunk.mean(axis=0) for chunk in np.array_split(banded, frames)])
    db = 10 * np.log10(pooled + 1e-10)
    db = np.maximum(db, db.max() - 80.0).ravel()
    return (db - db.mean()) / (db.std() + 1e-9)


class _Spectra:
    """The first ``seconds`` of each clip (mono mix), as spectra for quick cross-correlations."""

    def __init__(self, waves: list[np.ndarray], sample_rate: int, seconds: float = 0.5) -> None:
        length = min(round(seconds * sample_rate), min(w.shape[-1] for w in waves))
        mono = np.stack([np.asarray(w, dtype=np.float64).reshape(-1, w.shape[-1]).mean(axis=0)[:length]
                         for w in waves])
        self.size = 1 << int(math.ceil(math.log2(2 * length)))
        self.spectra = np.fft.rfft(mono, self.size, axis=1)
        self.norms = np.linalg.norm(mono, axis=1) + 1e-12

    def correlation(self, i: int, j: int, max_lag: int) -> float:
        """The largest normalised cross-correlation of clips i and j within ``max_lag`` samples."""
        cross = np.fft.irfft(self.spectra[i] * np.conj(self.spectra[j]), self.size)
        best = max(cross[: max_lag + 1].max(), cross[-max_lag:].max() if max_lag else -np.inf)
        return float(best / (self.norms[i] * self.norms[j]))


def near_duplicates(waves: list[np.ndarray], sample_rate: int, threshold: float,
                    similar: float = 0.98, max_lag_seconds: float = 0.005) -> dict[int, tuple[int, float]]:
    """``{index: (index of the earlier clip it repeats, correlation)}``.

    Clips are taken in order; each is compared with the (at most 8) clips kept before it whose
    coarse spectrograms (:func:`fingerprint`) correlate best, at least ``similar``, by waveform
    correlation of their first 0.5 s at the best lag within ``max_lag_seconds``: ``threshold`` or
    more makes it a copy (the same recording at another gain or encoding; another hit of the same
    drum, a velocity layer, stays below about 0.997).
    """
    if not waves:
        return {}
    prints = np.stack([fingerprint(w, sample_rate) for w in waves])
    spectral = prints @ prints.T / prints.shape[1]
    spectra, max_lag = _Spectra(waves, sample_rate), round(max_lag_seconds * sample_rate)
    kept: list[int] = []
    copies: dict[int, tuple[int, float]] = {}
    for index in range(len(waves)):
        close = sorted((j for j in kept if spectral[index, j] >= similar), key=lambda j: -spectral[index, j])
        found = next(((j, r) for j in close[:8] if (r := spectra.correlation(index, j, max_lag)) >= threshold), None)
        if found is None:
            kept.append(index)
        else:
            copies[index] = found
    return copies
