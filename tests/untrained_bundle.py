"""An untrained model saved as a bundle, for tests of commands that only sample."""

from __future__ import annotations

from pathlib import Path

import torch

from diffusionkit.build import build_diffusion_model, build_modality
from diffusionkit.bundle import diffusion_weights, run_metadata, save_bundle
from diffusionkit.config import compose_config


def untrained_bundle(overrides: list[str], classes: list[str], folder: Path) -> Path:
    """``folder/model.safetensors`` of the model ``train`` would build from ``overrides``, its
    all-zero parameters (the zero-initialised output layer among them) randomised, so that
    inputs and labels change what it predicts."""
    cfg = compose_config("train", overrides)
    torch.manual_seed(0)
    module = build_diffusion_model(cfg, build_modality(cfg), num_classes=len(classes))
    with torch.no_grad():
        for p in module.ema.module.parameters():
            if not p.any():
                p.normal_(0.0, 0.05)
    folder.mkdir(parents=True, exist_ok=True)
    return save_bundle(folder / "model.safetensors", diffusion_weights(module), run_metadata(cfg, classes))
