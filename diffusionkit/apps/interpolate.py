"""``diffusionkit interpolate``: items between two inputs, through their DDIM-inverted latents."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from diffusionkit.apps.common import (edit_labels, finish, open_model, output_dir, require_values, sample_in_batches,
                                      save_items)
from diffusionkit.apps.convert import inversion_settings
from diffusionkit.apps.edits import slerp
from diffusionkit.errors import UsageError
from diffusionkit.plugin_calls import read_media


def run(cfg: DictConfig) -> Path:
    require_values(cfg)
    if int(cfg.n) < 2:
        raise UsageError(f"n counts the items from a to b inclusive and must be at least 2, got {cfg.n}")
    model, concat = open_model(cfg, cfg.n)
    cfg = inversion_settings(cfg)
    ends = torch.stack([read_media(model.modality, cfg.a, "a"), read_media(model.modality, cfg.b, "b")])
    labels = edit_labels(cfg.n, cfg.label, model.classes)
    out = output_dir("interpolate", cfg.out)
    strength = float(cfg.strength)
    latent_a, latent_b = model.module.invert(ends, None if labels is None else labels[:2], steps=cfg.steps,
                                             spacing=cfg.sampler.spacing, strength=strength,
                                             concat=concat["concat"][:2] if concat else None).cpu()
    weights = torch.linspace(0.0, 1.0, cfg.n).tolist()
    noise = torch.stack([slerp(latent_a, latent_b, t) for t in weights])
    generator = torch.Generator().manual_seed(int(cfg.seed))
    samples = sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator, noise=noise,
                                strength=strength, **concat)
    written = model.modality.save(ends[0], out / "a") + model.modality.save(ends[1], out / "b")
    written += save_items(model, samples, labels, out, names=[f"{i:03d}_t{t:.2f}" for i, t in enumerate(weights)])
    return finish(out, cfg, model, written)
