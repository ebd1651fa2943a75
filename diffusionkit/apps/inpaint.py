"""``diffusionkit inpaint``: regenerate one region of an input, coherent with the rest."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from diffusionkit.apps.common import (
    edit_labels,
    open_model,
    output_dir,
    repeat,
    report_written,
    require_values,
    sample_in_batches,
    save_items,
    write_recipe,
)
from diffusionkit.apps.edits import region_mask


def run(cfg: DictConfig) -> Path:
    require_values(cfg)
    model, concat = open_model(cfg, cfg.n)
    keep = 1.0 - region_mask(model.modality, float(cfg.start), float(cfg.end))
    source = model.modality.load(cfg.input)
    labels = edit_labels(cfg.n, cfg.label, model.classes)
    out = output_dir("inpaint", cfg.out)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    samples = sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator,
                                known=repeat(source, cfg.n), mask=keep, **concat)
    written = model.modality.save(source, out / "source")
    written += save_items(model, samples, labels, out, names=[f"inpainted_{i:03d}" for i in range(cfg.n)])
    write_recipe(out, cfg, model)
    report_written(out, written)
    return out
