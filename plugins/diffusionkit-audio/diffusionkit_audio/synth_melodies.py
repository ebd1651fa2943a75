"""Deterministic numpy melodies: random monophonic phrases rendered with five timbres.

A phrase is a list of ``(start_seconds, end_seconds, midi_pitch)`` tuples, sorted and
non-overlapping. Timbres: ``sine``; band-limited ``square`` and ``saw`` (additive partials below
Nyquist); ``pluck`` (Karplus & Strong 1983, "Digital synthesis of plucked-string and drum timbres",
Computer Music Journal 7(2)); ``bell`` (2-operator FM, Chowning 1973, "The synthesis of complex audio
spectra by means of frequency modulation", JAES 21(7)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIMBRES = ("sine", "square", "saw", "pluck", "bell")
PEAK = 0.9
LOWEST, HIGHEST = 55, 79  # MIDI pitch range of generated phrases (G3..G5)
#: name -> semitone offsets from the root
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "natural_minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
}
#: rhythm patterns in beats (quarter = 1): straight quarters and eighths, dotted figures, mixtures
RHYTHMS: tuple[tuple[float, ...], ...] = (
    (1, 1, 1, 1),
    (0.5, 0.5, 1, 0.5, 0.5, 1),
    (1.5, 0.5, 1, 1),
    (0.5,) * 8,
    (1, 0.5, 0.5, 1.5, 0.5),
    (0.75, 0.25, 0.75, 0.25, 1, 1),
    (0.5, 0.5, 0.5, 0.5, 1, 1),
    (1.5, 0.5, 1.5, 0.5, 0.5, 0.5, 1),
)
#: timbre -> (attack s, decay s, sustain level, release s) before a +-20 % random jitter
_ADSR = {"sine": (0.01, 0.08, 0.8, 0.05), "square": (0.005, 0.1, 0.6, 0.04), "saw": (0.005, 0.1, 0.6, 0.04),
         "pluck": (0.002, 0.3, 0.3, 0.03), "bell": (0.002, 0.4, 0.2, 0.1)}


def midi_to_hz(pitch: float) -> float:
    """Equal-tempered frequency of a MIDI pitch (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


@dataclass(frozen=True)
class Phrase:
    """A phrase's notes ``(start_seconds, end_seconds, midi_pitch)`` and how they were drawn: the
    scale, its root, and the tempo in quarter notes per minute after fitting the clip."""

    notes: list[tuple[float, float, int]]
    scale: str
    root: int
    bpm: float


def random_phrase(rng: np.random.Generator, duration_seconds: float, scale: str | None = None,
                  root: int | None = None) -> list[tuple[float, float, int]]:
    """The notes of :func:`phrase_plan`."""
    return phrase_plan(rng, duration_seconds, scale, root).notes


def phrase_plan(rng: np.random.Generator, duration_seconds: float, scale: str | None = None,
                root: int | None = None) -> Phrase:
    """4-8 non-overlapping notes from a random rhythm pattern, tempo (90-140 bpm) and scale.

    Pitches take a random walk over the scale (``scale``/``root``, or random: root pitch class at
    MIDI 55-66), staying within MIDI 55-79. Note values are halved until the pattern fits inside
    ``duration_seconds`` (doubling the tempo); each note sounds for 60-95 % of its slot.
    """
    scale = scale or str(rng.choice(list(SCALES)))
    root = int(rng.integers(LOWEST, LOWEST + 12)) if root is None else root
    pool = [p for p in range(LOWEST, HIGHEST + 1) if (p - root) % 12 in SCALES[scale]]
    beats = RHYTHMS[rng.integers(len(RHYTHMS))]
    beat = 60.0 / rng.uniform(90, 140)
    while sum(beats) * beat > 0.95 * duration_seconds and beat > 1e-3:
        beat /= 2
    start = rng.uniform(0.0, 0.05 * duration_seconds)
    target = root + 12 * int(rng.integers(0, 2))  # start on the root, in either octave
    index = int(np.argmin([abs(p - target) for p in pool]))
    phrase = []
    for length in beats:
        slot = length * beat
        phrase.append((start, start + slot * rng.uniform(0.6, 0.95), pool[index]))
        start += slot
        index = int(np.clip(index + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(pool) - 1))
    return Phrase(phrase, scale, root, 60.0 / beat)


def _adsr(rng: np.random.Generator, timbre: str, hold: int, total: int, sample_rate: int) -> np.ndarray:
    """ADSR over ``total`` samples: attack/decay/sustain while the note is held, then release."""
    a, d, s, r = (v * rng.uniform(0.8, 1.2) for v in _ADSR[timbre])
    t = np.arange(total) / sample_rate
    gate = np.where(t < a, t / a, s + (1 - s) * np.exp(-(t - a) / (d / 3)))
    level = gate[hold - 1] if hold > 0 else 0.0
    tail = level * np.exp(-(t - hold / sample_rate) / (r / 5))
    return np.where(np.arange(total) < hold, gate, tail)


def _tone(timbre: str, freq: float, rng: np.random.Generator, sample_rate: int, n: int) -> np.ndarray:
    """``n`` samples of one ``timbre`` note at ``freq`` Hz (unit-ish amplitude)."""
    t = np.arange(n) / sample_rate
    if timbre == "sine":
        return np.sin(2 * np.pi * freq * t)
    if timbre in ("square", "saw"):
        ks = np.arange(1, int(sample_rate / 2 / freq) + 1)
        if timbre == "square":
            ks = ks[ks % 2 == 1]
        amps = (4 if timbre == "square" else 2) / np.pi / ks * (-1.0) ** ((ks + 1) * (timbre == "saw"))
        return amps @ np.sin(2 * np.pi * freq * ks[:, None] * t)
    if timbre == "pluck":  # Karplus-Strong: y[n] = x[n] + rho * (y[n-P] + y[n-P-1]) / 2
        period = max(2, round(sample_rate / freq - 0.5))  # the averaging filter adds half a sample
        rho = rng.uniform(0.990, 0.998)
        y = np.zeros(n + period + 1)
        burst = rng.uniform(-1, 1, period)
        y[period + 1: 2 * period + 1] = burst - burst.mean()  # zero-mean excitation: no DC to ring on
        for lo in range(2 * period + 1, len(y), period):  # each block depends only on earlier blocks
            hi = min(lo + period, len(y))
            y[lo:hi] = rho * 0.5 * (y[lo - period: hi - period] + y[lo - period - 1: hi - period - 1])
        return y[period + 1:]
    if timbre == "bell":  # FM: sin(2 pi fc t + I(t) sin(2 pi fm t)), inharmonic c:m ratio, decaying index
        ratio, index = rng.choice([1.4, 2.76, 3.5]), rng.uniform(2.0, 6.0)
        mod = index * np.exp(-t / rng.uniform(0.2, 0.6)) * np.sin(2 * np.pi * freq * ratio * t)
        return np.sin(2 * np.pi * freq * t + mod)
    raise ValueError(f"unknown timbre {timbre!r}; expected one of {TIMBRES}")


def render_phrase(phrase: list[tuple[float, float, int]], timbre: str, rng: np.random.Generator,
                  sample_rate: int, num_samples: int) -> np.ndarray:
    """Render ``phrase`` with ``timbre`` as float32 ``[num_samples]``, peak-normalised to 0.9.

    Each note gets an ADSR envelope (release after its end); notes past the clip are cut and the
    last 10 ms fade out so nothing clicks.
    """
    if timbre not in TIMBRES:
        raise ValueError(f"unknown timbre {timbre!r}; expected one of {TIMBRES}")
    out = np.zeros(num_samples)
    for start, end, pitch in phrase:
        first = int(round(start * sample_rate))
        hold = max(1, int(round((end - start) * sample_rate)))
        total = min(hold + int(0.1 * sample_rate), num_samples - first)
        if total <= 0:
            continue
        note = _tone(timbre, midi_to_hz(pitch), rng, sample_rate, total)
        out[first: first + total] += note * _adsr(rng, timbre, min(hold, total), total, sample_rate)
    fade = min(num_samples // 8, int(0.01 * sample_rate))
    if fade > 0:
        out[num_samples - fade:] *= np.linspace(1.0, 0.0, fade)
    peak = np.abs(out).max(initial=0.0)
    return (out * (PEAK / peak) if peak > 0 else out).astype(np.float32)
