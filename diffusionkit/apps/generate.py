"""``diffusionkit generate``: new samples from a trained model."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from diffusionkit.apps.common import (labels_for, output_dir, require_values, sample_in_batches, save_items,
                                      write_recipe)
from diffusionkit.bundle import LoadedModel, load_model
from diffusionkit.errors import UsageError


def condition_inputs(model: LoadedModel, inputs: dict, n: int) -> dict:
    """The concatenated condition read from the user's named input file (e.g. ``sketch=FILE``)."""
    condition = model.module.condition
    names = set(inputs or {})
    expected = {condition.input_name} if condition is not None else set()
    if names - expected:
        name = sorted(names - expected)[0]
        takes = f"it takes {condition.input_name}=FILE" if condition is not None else "it takes no input files"
        raise UsageError(f"unknown option '{name}' for this model; {takes}")
    if condition is None:
        return {}
    if condition.input_name not in names:
        raise UsageError(f"this model is conditioned on a {condition.input_name}: pass {condition.input_name}=FILE")
    concat = condition.load(inputs[condition.input_name], model.modality)
    return {"concat": concat.unsqueeze(0).expand(n, *concat.shape).to(model.module.device)}


def run(cfg: DictConfig) -> Path:
    require_values(cfg)
    model = load_model(cfg.ckpt)
    labels = labels_for(cfg.n, cfg.label, model.classes)
    concat = condition_inputs(model, cfg.get("inputs"), cfg.n)
    out = output_dir("generate", cfg.out)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    samples = sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator, **concat)
    written = save_items(model, samples, labels, out)
    write_recipe(out, cfg, model)
    print(f"wrote {len(written)} files to {out}")
    return out
