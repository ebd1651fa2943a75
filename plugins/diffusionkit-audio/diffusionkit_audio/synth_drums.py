"""Deterministic numpy drum one-shots in eight classes.

Every voice has the signature ``(rng, sample_rate, num_samples) -> float32 [num_samples]`` and draws
its pitch, decay, noise colour, drive (tanh saturation) and a 0-5 ms onset offset from ``rng``, a
:class:`Draws` that remembers where the named ones fell in their ranges (:data:`PARAMETERS`, for
captions: :func:`drum_with_parameters`).
Outputs are mean-removed, faded out at the end and peak-normalised to 0.9. Frequencies adapt to
the sample rate (every band stays below Nyquist), so the voices work from 8 kHz up.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DRUM_CLASSES = ("kick", "snare", "clap", "closed_hat", "open_hat", "tom", "crash", "rim")
PEAK = 0.9
#: TR-808 cymbal oscillator ratios (six square waves), relative to the lowest one
_METAL_RATIOS = np.array([1.0, 1.4827, 1.8003, 2.5459, 2.6302, 3.8966])

#: the named draws of every voice: the (settled) tone or band, the body's decay, the spectral tilt
#: of its noise (0 white, higher darker) and the drive
PARAMETERS = ("pitch", "decay", "tilt", "drive")


class Draws:
    """A generator (every method of ``rng``) whose ``uniform(..., name=...)`` also keeps where the draw
    fell in its range, in ``positions`` (0 the low end, 1 the high end). The draws are ``rng``'s own."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.positions: dict[str, float] = {}

    def uniform(self, low: float = 0.0, high: float = 1.0, size: int | None = None, *, name: str | None = None):
        value = self.rng.uniform(low, high, size)
        if name is not None:
            self.positions[name] = float((value - low) / (high - low)) if high > low else 0.5
        return value

    def __getattr__(self, attribute: str):
        return getattr(self.rng, attribute)


Voice = Callable[[Draws, int, int], np.ndarray]


# --- building blocks ------------------------------------------------------------------------


def _time(sample_rate: int, num_samples: int) -> np.ndarray:
    return np.arange(num_samples) / sample_rate


def _decay(t: np.ndarray, tau: float) -> np.ndarray:
    return np.exp(-t / tau)


def _noise(rng: Draws, sample_rate: int, num_samples: int, low: float = 0.0,
           high: float | None = None, tilt: float = 0.0) -> np.ndarray:
    """Unit-RMS coloured noise: white noise shaped in the FFT domain.

    ``tilt`` is the spectral slope exponent (0 white, 1 pink: power ~ 1/f^tilt); ``low``/``high`` are
    the corners of a smooth 4th-order band-pass magnitude (``high`` is capped at 0.95 Nyquist).
    """
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.maximum(np.fft.rfftfreq(num_samples, 1.0 / sample_rate), 1.0)
    high = min(high or sample_rate, 0.95 * sample_rate / 2)
    gain = freqs ** (-tilt / 2) / np.sqrt(1.0 + (low / freqs) ** 8) / np.sqrt(1.0 + (freqs / high) ** 8)
    gain[0] = 0.0
    out = np.fft.irfft(spectrum * gain, num_samples)
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)


def _sweep(t: np.ndarray, sample_rate: int, start: float, end: float, time_constant: float) -> np.ndarray:
    """Sine whose frequency glides exponentially from ``start`` to ``end`` Hz."""
    freq = end + (start - end) * _decay(t, time_constant)
    return np.sin(2 * np.pi * np.cumsum(freq) / sample_rate)


def _metal(rng: Draws, t: np.ndarray, sample_rate: int) -> np.ndarray:
    """Six detuned square waves at inharmonic (808-style) ratios: a metallic, clangy spectrum."""
    base = rng.uniform(300.0, 480.0, name="pitch")
    phases = rng.uniform(0, 2 * np.pi, len(_METAL_RATIOS))
    return sum(np.sign(np.sin(2 * np.pi * base * r * t + p)) for r, p in zip(_METAL_RATIOS, phases)) / 6


def _highpass(x: np.ndarray, sample_rate: int, cutoff: float) -> np.ndarray:
    """Smooth 4th-order FFT high-pass (acausal; used only on decaying one-shot material)."""
    freqs = np.maximum(np.fft.rfftfreq(len(x), 1.0 / sample_rate), 1.0)
    return np.fft.irfft(np.fft.rfft(x) / np.sqrt(1.0 + (cutoff / freqs) ** 8), len(x))


def _nyq(sample_rate: int, fraction: float, ceiling: float) -> float:
    """``ceiling`` Hz, or ``fraction`` of Nyquist when that is lower."""
    return min(ceiling, fraction * sample_rate / 2)


def _finish(rng: Draws, x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Drive, 0-5 ms onset offset, mean removal, end fade and peak normalisation to 0.9."""
    n = len(x)
    drive = rng.uniform(1.0, 4.0, name="drive")
    x = np.tanh(drive * x / (np.abs(x).max() + 1e-12)) / np.tanh(drive)
    offset = min(int(rng.uniform(0.0, 0.005) * sample_rate), n)
    x = np.concatenate([np.zeros(offset), x[: n - offset]])
    x = x - x.mean()
    fade = min(n // 8, int(0.05 * sample_rate))
    if fade > 0:
        x[n - fade:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
    peak = np.abs(x).max()
    return (x * (PEAK / peak) if peak > 0 else x).astype(np.float32)


# --- voices ---------------------------------------------------------------------------------


def kick(rng: Draws, sample_rate: int, num_samples: int) -> np.ndarray:
    """Sine swept ~150 -> ~45 Hz with a long decay, plus a short band-passed noise click."""
    t = _time(sample_rate, num_samples)
    body = _sweep(t, sample_rate, rng.uniform(120, 180), rng.uniform(40, 55, name="pitch"), rng.uniform(0.02, 0.05))
    body *= _decay(t, rng.uniform(0.15, 0.4, name="decay"))
    click = _noise(rng, sample_rate, num_samples, 1000, _nyq(sample_rate, 0.8, 6000), rng.uniform(0, 1, name="tilt"))
    return _finish(rng, body + rng.uniform(0.1, 0.3) * click * _decay(t, rng.uniform(0.002, 0.004)), sample_rate)


def snare(rng: Draws, sample_rate: int, num_samples: int) -> np.ndarray:
    """Two-mode drum-head tone (~180-250 Hz) plus a bright, high-passed noise body (the wires)."""
    t = _time(sample_rate, num_samples)
    f0 = rng.uniform(180, 250, name="pitch")
    tone = np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(2 * np.pi * 1.59 * f0 * t)  # (0,1) and (1,1) modes
    tone *= _decay(t, rng.uniform(0.03, 0.08))
    wires = _noise(rng, sample_rate, num_samples, _nyq(sample_rate, 0.3, rng.uniform(1000, 2000)), None,
                   rng.uniform(0, 0.7, name="tilt"))
    wires *= rng.uniform(0.6, 1.0) * _decay(t, rng.uniform(0.08, 0.2, name="decay"))
    return _finish(rng, 0.6 * tone + wires, sample_rate)


def clap(rng: Draws, sample_rate: int, num_samples: int) -> np.ndarray:
    """3-4 short noise bursts 8-15 ms apart, then a diffuse tail; all band-passed around 1-2 kHz."""
    t = _time(sample_rate, num_samples)
    centre = rng.uniform(1000, 2000, name="pitch")
    high = _nyq(sample_rate, 0.9, 1.5 * centre)
    noise = _noise(rng, sample_rate, num_samples, 0.7 * centre, high, rng.uniform(0, 1, name="tilt"))
    env, start = np.zeros(num_samples), 0.0
    for _ in range(rng.integers(3, 5)):
        env += (t >= start) * _decay(np.maximum(t - start, 0), rng.uniform(0.002, 0.004))
        start += rng.uniform(0.008, 0.015)
    env += 0.7 * (t >= start) * _decay(np.maximum(t - start, 0), rng.uniform(0.08, 0.2, name="decay"))
    return _finish(rng, noise * env, sample_rate)


def _hat(rng: Draws, sample_rate: int, num_samples: int, tau: float) -> np.ndarray:
    t = _time(sample_rate, num_samples)
    cutoff = _nyq(sample_rate, 0.6, rng.uniform(6000, 8000))
    tone = _highpass(_metal(rng, t, sample_rate), sample_rate, cutoff)
    noise = _noise(rng, sample_rate, num_samples, cutoff, None, rng.uniform(0, 0.5, name="tilt"))
    tone /= np.sqrt(np.mean(tone**2)) + 1e-12
    mix = rng.uniform(0.3, 0.7)
    return _finish(rng, (mix * tone + (1 - mix) * noise) * _decay(t, tau), sample_rate)


def closed_hat(rng: Draws, sample_rate: int, num_samples: int) -> np.ndarray:
    """Metallic square partials + noise, high-passed, with a very short (10-30 ms) decay."""
    return _hat(rng, sample_rate, num_samples, rng.uniform(0.01, 0.03, name="decay"))


def open_hat(rng: Draws, sample_rate: int, num_samples: int) -> np.ndarray:
    """The closed hat's sound with a long (150-400 ms) decay."""
    return _hat(rng, sample_rate, num_samples, rng.uniform(0.15, 0.4, name="decay"))


def tom(rng: Draws, sample_rate: int, num_samples: int) -> np.ndarray:
    """Sine settling to 80-250 Hz from 1.3-1.6x above, with a longer tone than the kick's sweep."""
    t = _time(sample_rate, num_samples)
    f0 = rng.uniform(80, 250, name="pitch")
    body = _sweep(t, sample_rate, f0 * rng.uniform(1.3, 1.6), f0, rng.uniform(0.03, 0.08))
    body *= _decay(t, rng.uniform(0.2, 0.5, name="decay"))
    attack = _noise(rng, sample_rate, num_samples, 2 * f0, _nyq(sample_rate, 0.8, 5000), rng.uniform(0, 1, name="tilt"))
    return _finish(rng, body + 0.15 * attack * _decay(t, rng.uniform(0.005, 0.01)), sample_rate)


def crash(rng: Draws, sample_rate: int, num_samples: int) -> np.ndarray:
    """Long (0.6-1.5 s) bright noise wash over metallic partials, with a 2-10 ms swell."""
    t = _time(sample_rate, num_samples)
    noise = _noise(rng, sample_rate, num_samples, _nyq(sample_rate, 0.35, rng.uniform(3000, 5000)), None,
                   rng.uniform(0, 0.6, name="tilt"))
    tone = _highpass(_metal(rng, t, sample_rate), sample_rate, rng.uniform(1500, 3000))
    tone /= np.sqrt(np.mean(tone**2)) + 1e-12
    env = _decay(t, rng.uniform(0.6, 1.5, name="decay")) * (1 - _decay(t, rng.uniform(0.002, 0.01)))
    return _finish(rng, (noise + rng.uniform(0.3, 0.6) * tone) * env, sample_rate)


def rim(rng: Draws, sample_rate: int, num_samples: int) -> np.ndarray:
    """Very short (5-15 ms) high tone at 400-1800 Hz with a tiny noise click."""
    t = _time(sample_rate, num_samples)
    f0 = rng.uniform(400, min(1800, 0.4 * sample_rate), name="pitch")
    tone = np.sin(2 * np.pi * f0 * t) * _decay(t, rng.uniform(0.005, 0.015, name="decay"))
    click = _noise(rng, sample_rate, num_samples, f0, _nyq(sample_rate, 0.9, 4 * f0), rng.uniform(0, 1, name="tilt"))
    return _finish(rng, tone + 0.3 * click * _decay(t, rng.uniform(0.001, 0.003)), sample_rate)


DRUM_VOICES: dict[str, Voice] = {name: globals()[name] for name in DRUM_CLASSES}


def drum_with_parameters(name: str, rng: np.random.Generator, sample_rate: int,
                         num_samples: int) -> tuple[np.ndarray, dict[str, float]]:
    """:func:`synth_drum`'s one-shot, and where each of its :data:`PARAMETERS` fell in its range (0-1)."""
    if name not in DRUM_VOICES:
        raise ValueError(f"unknown drum class {name!r}; expected one of {DRUM_CLASSES}")
    if sample_rate < 8000 or num_samples < 1:
        raise ValueError(f"need sample_rate >= 8000 and num_samples >= 1, got {sample_rate}, {num_samples}")
    draws = Draws(rng)
    return DRUM_VOICES[name](draws, sample_rate, num_samples), draws.positions


def synth_drum(name: str, rng: np.random.Generator, sample_rate: int, num_samples: int) -> np.ndarray:
    """One ``name`` one-shot (one of :data:`DRUM_CLASSES`): float32 ``[num_samples]``, peak 0.9."""
    return drum_with_parameters(name, rng, sample_rate, num_samples)[0]
