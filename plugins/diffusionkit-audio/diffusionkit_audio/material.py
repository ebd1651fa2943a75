"""Real-world-like test material: synthesised drums and phrases made stereo, with a reverb
tail and broadband noise, at 44.1 kHz. Used by the codec tests and benchmarks/bench_audio.py.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from .synth_drums import synth_drum
from .synth_melodies import random_phrase, render_phrase

FILE_RATE = 44100
KINDS = ("drum", "melody", "mix", "pink")


def _stereo(mono: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A second channel 0.5 ms later and a little quieter."""
    delay = int(0.0005 * FILE_RATE)
    right = np.concatenate([np.zeros(delay), mono[: len(mono) - delay]]) * rng.uniform(0.8, 1.0)
    return np.stack([mono, right])


def _reverb(wave: np.ndarray, rng: np.random.Generator, seconds: float = 0.6, rt60: float = 0.5,
            wet: float = 0.3) -> np.ndarray:
    """Each channel plus its convolution with exponentially decaying noise (a diffuse tail)."""
    t = np.arange(int(seconds * FILE_RATE)) / FILE_RATE
    out = []
    for channel in wave:
        ir = rng.standard_normal(t.size) * np.exp(-6.91 * t / rt60)
        ir[0] = 0.0
        out.append(channel + wet * fftconvolve(channel, ir / np.sqrt(np.square(ir).sum()))[: channel.size])
    return np.stack(out)


def real_world_like(kind: str, seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """44.1 kHz stereo float ``[2, samples]``, peak 0.9: ``drum`` (a snare), ``melody`` (a saw
    phrase), ``mix`` (kick + snare + melody with a reverb tail and broadband noise 45 dB down)
    or ``pink`` noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FILE_RATE)
    drum = _stereo(synth_drum("snare", rng, FILE_RATE, n), rng)
    melody = _stereo(render_phrase(random_phrase(rng, seconds), "saw", rng, FILE_RATE, n), rng)
    if kind == "drum":
        wave = drum
    elif kind == "melody":
        wave = melody
    elif kind == "mix":
        wave = _reverb(0.6 * _stereo(synth_drum("kick", rng, FILE_RATE, n), rng) + 0.5 * melody + 0.3 * drum, rng)
        wave = wave + 10 ** (-45 / 20) * rng.standard_normal(wave.shape)
    elif kind == "pink":
        freqs = np.maximum(np.fft.rfftfreq(n, 1.0 / FILE_RATE), 20.0)
        wave = np.stack([np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) / np.sqrt(freqs), n) for _ in range(2)])
    else:
        raise ValueError(kind)
    return (0.9 * wave / np.abs(wave).max()).astype(np.float32)
