"""``diffusionkit inpaint``: regenerate one region of an input, coherent with the rest."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from diffusionkit.apps.common import repeat, sample_in_batches
from diffusionkit.apps.edits import region_mask, run_edit


def run(cfg: DictConfig) -> Path:
    def inpaint(model, source, labels, generator, concat):
        keep = 1.0 - region_mask(model.modality, float(cfg.start), float(cfg.end))
        return sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator,
                                 known=repeat(source, cfg.n), mask=keep, **concat)

    return run_edit(cfg, "inpaint", "inpainted", inpaint)
