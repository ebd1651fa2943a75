"""``diffusionkit extend``: continue an input past its end, one window at a time."""

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
from diffusionkit.apps.edits import check_context, continuation_window, edit_axis
from diffusionkit.bundle import LoadedModel
from diffusionkit.errors import UsageError


def extend(model: LoadedModel, source: torch.Tensor, cfg: DictConfig, labels: torch.Tensor | None,
           generator: torch.Generator, **concat: torch.Tensor) -> torch.Tensor:
    """``[n, C, ...]``: ``source`` followed by ``cfg.times`` generated continuations, each window
    started from the last ``cfg.context`` of what came before (RePaint-style masking)."""
    axis = edit_axis(model.modality) + 1  # batch axis first
    current = repeat(source, cfg.n)
    for _ in range(int(cfg.times)):
        windows = [continuation_window(item, model.modality, float(cfg.context)) for item in current]
        known = torch.stack([w[0] for w in windows])
        mask, keep = windows[0][1], windows[0][2]
        window = sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator,
                                   known=known, mask=mask, **concat)
        current = torch.cat([current, window.narrow(axis, keep, window.shape[axis] - keep)], dim=axis)
    return current


def run(cfg: DictConfig) -> Path:
    require_values(cfg)
    if int(cfg.times) < 1:
        raise UsageError(f"times must be at least 1, got {cfg.times}")
    check_context(float(cfg.context))
    model, concat = open_model(cfg, cfg.n)
    source = model.modality.load(cfg.input)
    labels = edit_labels(cfg.n, cfg.label, model.classes)
    out = output_dir("extend", cfg.out)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    samples = extend(model, source, cfg, labels, generator, **concat)
    written = model.modality.save(source, out / "source")
    written += save_items(model, samples, labels, out, names=[f"extended_{i:03d}" for i in range(cfg.n)])
    write_recipe(out, cfg, model)
    report_written(out, written)
    return out
