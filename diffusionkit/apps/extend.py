"""``diffusionkit extend``: continue an input past its end, one window at a time."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig

from diffusionkit.apps.common import repeat, sample_in_batches
from diffusionkit.apps.edits import check_context, continuation_window, edit_axis, run_edit
from diffusionkit.bundle import LoadedModel
from diffusionkit.errors import UsageError


def extend(model: LoadedModel, source: torch.Tensor, cfg: DictConfig, labels: torch.Tensor | None,
           generator: torch.Generator, conditioning: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """``[n, C, ...]``: ``source`` followed by ``cfg.times`` generated continuations, each window
    started from the last ``cfg.context`` of what came before (RePaint-style masking)."""
    axis = edit_axis(model.modality) + 1  # batch axis first
    current = repeat(source, cfg.n)
    for _ in range(int(cfg.times)):
        windows = [continuation_window(item, model.modality, float(cfg.context)) for item in current]
        known = torch.stack([w[0] for w in windows])
        mask, keep = windows[0][1], windows[0][2]
        window = sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator,
                                   known=known, mask=mask, conditions=conditioning)
        current = torch.cat([current, window.narrow(axis, keep, window.shape[axis] - keep)], dim=axis)
    return current


def extended(cfg: DictConfig, model: LoadedModel, source: torch.Tensor, labels: torch.Tensor | None,
             generator: torch.Generator, conditioning: dict[str, torch.Tensor]) -> torch.Tensor:
    """The command's edit: ``source`` continued by ``cfg.times`` windows (see :func:`extend`)."""
    if int(cfg.times) < 1:
        raise UsageError(f"times must be at least 1, got {cfg.times}")
    check_context(float(cfg.context))
    return extend(model, source, cfg, labels, generator, conditioning)


def run(cfg: DictConfig) -> Path:
    if int(cfg.times) < 1:
        raise UsageError(f"times must be at least 1, got {cfg.times}")
    check_context(float(cfg.context))
    return run_edit(cfg, "extend", "extended", partial(extended, cfg))
