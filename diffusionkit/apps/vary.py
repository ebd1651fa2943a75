"""``diffusionkit vary``: variations of an input (SDEdit) that grow with ``strength``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from diffusionkit.apps.common import repeat, sample_in_batches
from diffusionkit.apps.edits import run_edit


def run(cfg: DictConfig) -> Path:
    def vary(model, source, labels, generator, concat):
        return sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator,
                                 init=repeat(source, cfg.n), strength=float(cfg.strength), **concat)

    return run_edit(cfg, "vary", "variation", vary)
