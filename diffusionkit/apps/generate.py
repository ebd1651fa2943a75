"""``diffusionkit generate``: new samples from a trained model."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from diffusionkit.apps.common import (finish, labels_for, open_model, output_dir, require_values, sample_in_batches,
                                      save_items)


def run(cfg: DictConfig) -> Path:
    require_values(cfg)
    model, concat = open_model(cfg, cfg.n)
    labels = labels_for(cfg.n, cfg.label, model.classes)
    out = output_dir("generate", cfg.out)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    samples = sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator, **concat)
    return finish(out, cfg, model, save_items(model, samples, labels, out))
