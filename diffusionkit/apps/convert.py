"""``diffusionkit convert``: an input regenerated under a target class (SDEdit or DDIM inversion)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig, open_dict

from diffusionkit.apps.common import first_items, repeat, resolve_label, sample_in_batches
from diffusionkit.apps.edits import run_edit
from diffusionkit.bundle import LoadedModel
from diffusionkit.errors import UsageError
from diffusionkit.options import METHODS


def inversion_settings(cfg: DictConfig) -> DictConfig:
    """DDIM inversion pairs with deterministic DDIM sampling on the same trailing grid (Song et
    al. 2021); other samplers or the Karras grid reproduce the inverted input poorly."""
    settings = cfg.copy()
    with open_dict(settings):
        settings.sampler = {"name": "ddim", "spacing": "trailing", "options": {"eta": 0.0}}
    return settings


def convert(model: LoadedModel, sources: torch.Tensor, target: int, cfg: DictConfig, generator: torch.Generator,
            conditioning: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """One conversion of each source ``[k, C, *spatial]`` to class ``target`` by ``cfg.method``."""
    k = len(sources)
    labels = torch.full((k,), target, dtype=torch.long)
    if cfg.method == "sdedit":
        return sample_in_batches(model, k, labels, cfg, cfg.batch_size, generator,
                                 init=sources, strength=float(cfg.strength), conditions=conditioning)
    cfg = inversion_settings(cfg)
    noise = model.module.invert(sources, steps=cfg.steps, spacing=cfg.sampler.spacing,
                                strength=float(cfg.strength), conditions=conditioning).cpu()
    return sample_in_batches(model, k, labels, cfg, cfg.batch_size, generator,
                             noise=noise, strength=float(cfg.strength), conditions=conditioning)


def check_method(cfg: DictConfig) -> None:
    if cfg.method not in METHODS:
        raise UsageError(f"unknown method '{cfg.method}'; choose method= one of: {', '.join(METHODS)}")


def conversion_count(cfg: DictConfig) -> int:
    """How many conversions ``cfg`` makes: one for the deterministic ``method=invert``, else ``n``."""
    return 1 if cfg.method == "invert" else int(cfg.n)


def conversions(cfg: DictConfig, model: LoadedModel, source: torch.Tensor, labels: torch.Tensor | None,
                generator: torch.Generator, conditioning: dict[str, torch.Tensor]) -> torch.Tensor:
    """The command's edit: :func:`conversion_count` conversions of ``source`` to ``cfg.target``."""
    check_method(cfg)
    n = conversion_count(cfg)
    target = resolve_label(cfg.target, model.classes)
    return convert(model, repeat(source, n), target, cfg, generator, first_items(conditioning, n))


def target_name(cfg: DictConfig, model: LoadedModel) -> str:
    """The target class's name (the conversions' file prefix)."""
    return model.classes[resolve_label(cfg.target, model.classes)]


def run(cfg: DictConfig) -> Path:
    check_method(cfg)
    n = conversion_count(cfg)
    out = run_edit(cfg, "convert", partial(target_name, cfg), partial(conversions, cfg))
    if n < cfg.n:
        print(f"method=invert is deterministic (DDIM): one conversion written (n={cfg.n} asked); "
              f"method=sdedit gives several")
    return out
