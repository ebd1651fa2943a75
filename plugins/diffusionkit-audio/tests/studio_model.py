"""A tiny untrained audio model bundle (1 s at 16 kHz, eight drum classes, a text prompt) and a generated WAV,
for the studio's tests: no training, a few sampling steps per request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from tests.untrained_bundle import untrained_bundle

CLASSES = ["kick", "snare", "clap", "closed_hat", "open_hat", "tom", "crash", "rim"]
TINY = ["modality=audio", "data=drums", "net=unet_small", "net.model_channels=8", "net.attention_levels=[]",
        "net.channel_mult=[1,2]", "cond=text", "text_encoder=word_hash"]  # a prompt too: the page shows its box
RATE = 16000


def tiny_audio_bundle(folder: Path) -> Path:
    """``folder/model.safetensors``: an untrained tiny audio model (see :func:`untrained_bundle`)."""
    return untrained_bundle(TINY, CLASSES, folder)


def drum_wav(path: Path, seconds: float = 1.0, rate: int = 44100) -> Path:
    """A decaying 60 Hz thump with a click: a kick-like one-shot, as 16-bit WAV."""
    t = np.arange(int(seconds * rate)) / rate
    wave = np.sin(2 * np.pi * 60 * t) * np.exp(-t * 8) + 0.3 * np.exp(-t * 200) * np.sin(2 * np.pi * 2000 * t)
    sf.write(path, (0.8 * wave / np.abs(wave).max()).astype(np.float32), rate, subtype="PCM_16")
    return path
