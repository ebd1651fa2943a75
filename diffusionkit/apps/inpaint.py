"""``diffusionkit inpaint``: regenerate one region of an input, coherent with the rest."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from diffusionkit.apps.common import repeat, sample_in_batches
from diffusionkit.apps.edits import region_mask, run_edit
from diffusionkit.bundle import LoadedModel


def inpainted(cfg: DictConfig, model: LoadedModel, source: Tensor, labels: Tensor | None,
              generator: torch.Generator, conditioning: dict[str, Tensor]) -> Tensor:
    """``cfg.n`` versions of ``source`` with ``[cfg.start, cfg.end)`` of its edit axis regenerated."""
    keep = 1.0 - region_mask(model.modality, float(cfg.start), float(cfg.end))
    return sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator,
                             known=repeat(source, cfg.n), mask=keep, conditions=conditioning)


def run(cfg: DictConfig) -> Path:
    return run_edit(cfg, "inpaint", "inpainted", partial(inpainted, cfg))
