"""``diffusionkit interpolate``: items between two inputs, through their DDIM-inverted latents."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from diffusionkit.apps.common import (edit_labels, finish, first_items, open_model, output_dir, require_values,
                                      sample_in_batches, save_items)
from diffusionkit.apps.convert import inversion_settings
from diffusionkit.apps.edits import slerp
from diffusionkit.bundle import LoadedModel
from diffusionkit.errors import UsageError
from diffusionkit.plugin_calls import read_media


def interpolation(cfg: DictConfig, model: LoadedModel, ends: Tensor, conditioning: dict[str, Tensor],
                  ) -> tuple[Tensor, Tensor | None, list[float]]:
    """``cfg.n`` items from ``ends[0]`` to ``ends[1]`` (``[2, C, *spatial]``) through their
    DDIM-inverted latents: the items, their labels and the interpolation weights."""
    if int(cfg.n) < 2:
        raise UsageError(f"n counts the items from a to b inclusive and must be at least 2, got {cfg.n}")
    cfg = inversion_settings(cfg)
    labels = edit_labels(cfg.n, cfg.label, model.classes)
    strength = float(cfg.strength)
    latent_a, latent_b = model.module.invert(ends, None if labels is None else labels[:2], steps=cfg.steps,
                                             spacing=cfg.sampler.spacing, strength=strength,
                                             conditions=first_items(conditioning, 2)).cpu()
    weights = torch.linspace(0.0, 1.0, cfg.n).tolist()
    noise = torch.stack([slerp(latent_a, latent_b, t) for t in weights])
    generator = torch.Generator().manual_seed(int(cfg.seed))
    samples = sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator, noise=noise,
                                strength=strength, conditions=conditioning)
    return samples, labels, weights


def item_stems(weights: list[float]) -> list[str]:
    """``000_t0.00``, ``001_t0.50``...: the interpolated items' file stems."""
    return [f"{i:03d}_t{t:.2f}" for i, t in enumerate(weights)]


def run(cfg: DictConfig) -> Path:
    require_values(cfg)
    if int(cfg.n) < 2:
        raise UsageError(f"n counts the items from a to b inclusive and must be at least 2, got {cfg.n}")
    model, conditioning = open_model(cfg, cfg.n)
    ends = torch.stack([read_media(model.modality, cfg.a, "a"), read_media(model.modality, cfg.b, "b")])
    edit_labels(cfg.n, cfg.label, model.classes)  # an unknown label is refused before the folder is made
    out = output_dir("interpolate", cfg.out)
    samples, labels, weights = interpolation(cfg, model, ends, conditioning)
    written = model.modality.save(ends[0], out / "a") + model.modality.save(ends[1], out / "b")
    written += save_items(model, samples, labels, out, names=item_stems(weights))
    return finish(out, inversion_settings(cfg), model, written)  # the recipe names the DDIM sampler used
