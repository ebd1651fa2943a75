"""``diffusionkit vary``: variations of an input (SDEdit) that grow with ``strength``."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from diffusionkit.apps.common import repeat, sample_in_batches
from diffusionkit.apps.edits import run_edit
from diffusionkit.bundle import LoadedModel


def variations(cfg: DictConfig, model: LoadedModel, source: Tensor, labels: Tensor | None,
               generator: torch.Generator, conditioning: dict[str, Tensor]) -> Tensor:
    """``cfg.n`` variations of ``source`` ``[C, *spatial]`` at ``cfg.strength`` (the command's edit)."""
    return sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator,
                             init=repeat(source, cfg.n), strength=float(cfg.strength), conditions=conditioning)


def run(cfg: DictConfig) -> Path:
    return run_edit(cfg, "vary", "variation", partial(variations, cfg))
