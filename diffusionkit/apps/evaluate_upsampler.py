"""``diffusionkit evaluate`` of a cascade's super-resolution stage on its own: real held-out
items, degraded as the stage was trained to undo, are upsampled by it and judged; the same
items merely resized back up (bilinear) and the originals are judged beside them."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import Tensor

from diffusionkit.apps.common import sample_in_batches
from diffusionkit.bundle import LoadedModel
from diffusionkit.diffusion.cascade import low_resolution_condition
from diffusionkit.evaluation import Judge
from diffusionkit.nets.resampling import resize


def held_out_per_class(judge: Judge, per_class: int) -> Tensor:
    """Indices of up to ``per_class`` real held-out items of each class."""
    picks = [torch.nonzero(judge.heldout_labels == c).flatten()[:per_class] for c in judge.heldout_labels.unique()]
    return torch.cat(picks)


def upsampler_items(model: LoadedModel, judge: Judge, cfg: DictConfig,
                    generator: torch.Generator) -> tuple[Tensor, Tensor, dict]:
    """The stage's upsampled versions of real held-out items, their true labels, and the scores."""
    name = low_resolution_condition(model.module)
    condition = model.module.conditioners[name]
    index = held_out_per_class(judge, int(cfg.n_per_class))
    x, labels = judge.heldout_x[index], judge.heldout_labels[index]
    folds = None if judge.heldout_folds is None else judge.heldout_folds[index]
    low = condition.degrade(x, condition.factors(x.dim() - 2))
    values = condition.from_low_resolution(low, x.shape[2:], generator)
    upsampled = sample_in_batches(model, len(x), labels, cfg, cfg.batch_size, generator, conditions={name: values})

    def kept(items: Tensor) -> float:
        return float((judge.predict(items, folds) == labels).float().mean())

    scores = {"items": len(x), "factors": list(condition.factors(x.dim() - 2)),
              "class_kept": kept(upsampled), "class_kept_resized": kept(resize(low, x.shape[2:])),
              "class_kept_originals": kept(x)}
    return upsampled, labels, scores
