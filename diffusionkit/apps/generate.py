"""``diffusionkit generate``: new samples from a trained model."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from diffusionkit.apps.common import (finish, labels_for, open_model, output_dir, require_values, sample_in_batches,
                                      save_items, text_condition)
from diffusionkit.bundle import LoadedModel


def generated(cfg: DictConfig, model: LoadedModel, conditioning: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
    """``cfg.n`` new items (of ``cfg.label``, else of every class in turn, else, given a text
    prompt, of the class the prompt names: no label) and their labels."""
    prompted = text_condition(model) in conditioning
    labels = None if prompted and cfg.label is None else labels_for(cfg.n, cfg.label, model.classes)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    return sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator, conditions=conditioning), labels


def run(cfg: DictConfig) -> Path:
    require_values(cfg)
    model, conditioning = open_model(cfg, cfg.n)
    labels_for(cfg.n, cfg.label, model.classes)  # an unknown label is refused before the folder is made
    out = output_dir("generate", cfg.out)
    samples, labels = generated(cfg, model, conditioning)
    return finish(out, cfg, model, save_items(model, samples, labels, out))
