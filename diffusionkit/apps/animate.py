"""``diffusionkit animate``: bring a still to life along the time axis.

The first ``keep`` steps come from ``input`` (e.g. a frame, which a video modality reads as a
clip of identical frames) and stay fixed at every sampling step; the rest is generated
coherently (RePaint-style masking, Lugmayr et al. 2022). With ``last=FILE`` the final step is
fixed too, so the steps in between interpolate from one frame to the other.
"""

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
from diffusionkit.apps.edits import edit_axis, end_steps_mask


def run(cfg: DictConfig) -> Path:
    require_values(cfg)
    model, concat = open_model(cfg, cfg.n)
    modality = model.modality
    keep_last = 1 if cfg.last else 0
    mask = end_steps_mask(modality, int(cfg.keep), keep_last)
    known = modality.load(cfg.input)
    if cfg.last:
        axis = edit_axis(modality)
        final = modality.load(cfg.last)
        known.narrow(axis, known.shape[axis] - 1, 1).copy_(final.narrow(axis, final.shape[axis] - 1, 1))
    labels = edit_labels(cfg.n, cfg.label, model.classes)
    out = output_dir("animate", cfg.out)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    samples = sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator,
                                known=repeat(known, cfg.n), mask=mask, **concat)
    written = model.modality.save(known, out / "source")
    written += save_items(model, samples, labels, out, names=[f"animated_{i:03d}" for i in range(cfg.n)])
    write_recipe(out, cfg, model)
    report_written(out, written)
    return out
