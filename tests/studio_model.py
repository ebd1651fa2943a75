"""A tiny untrained audio model bundle (1 s at 16 kHz, eight drum classes) and a generated WAV,
for the studio's tests: no training, a few sampling steps per request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from diffusionkit.bundle import diffusion_weights, run_metadata, save_bundle
from diffusionkit.config import compose_config
from diffusionkit.training.build import build_diffusion_module, build_modality

CLASSES = ["kick", "snare", "clap", "closed_hat", "open_hat", "tom", "crash", "rim"]
TINY = ["modality=audio", "data=drums", "net=unet_small", "net.model_channels=8", "net.attention_levels=[]",
        "net.channel_mult=[1,2]"]
RATE = 16000


def tiny_audio_bundle(folder: Path) -> Path:
    """``folder/model.safetensors``: an untrained tiny audio model whose zero-initialised weights
    are randomised, so that inputs and labels change what it predicts."""
    cfg = compose_config("train", TINY)
    modality = build_modality(cfg)
    torch.manual_seed(0)
    module = build_diffusion_module(cfg, modality, num_classes=len(CLASSES))
    with torch.no_grad():
        for p in module.ema.module.parameters():
            if not p.any():
                p.normal_(0.0, 0.05)
    folder.mkdir(parents=True, exist_ok=True)
    return save_bundle(folder / "model.safetensors", diffusion_weights(module), run_metadata(cfg, CLASSES))


def drum_wav(path: Path, seconds: float = 1.0, rate: int = 44100) -> Path:
    """A decaying 60 Hz thump with a click: a kick-like one-shot, as 16-bit WAV."""
    t = np.arange(int(seconds * rate)) / rate
    wave = np.sin(2 * np.pi * 60 * t) * np.exp(-t * 8) + 0.3 * np.exp(-t * 200) * np.sin(2 * np.pi * 2000 * t)
    sf.write(path, (0.8 * wave / np.abs(wave).max()).astype(np.float32), rate, subtype="PCM_16")
    return path
