"""Pieces every command shares: output folders, labels, batched sampling and recipes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from diffusionkit.bundle import LoadedModel
from diffusionkit.config import missing_values
from diffusionkit.errors import UsageError


def require_values(cfg: DictConfig) -> None:
    """Fail with one line when a mandatory value (``???``) was not given."""
    missing = missing_values(cfg)
    if missing:
        raise UsageError(f"missing value: give {' '.join(f'{k}=...' for k in missing)}")


def output_dir(command: str, out: str | None) -> Path:
    """A fresh folder for a command's outputs; an existing non-empty ``out=`` is refused so
    nothing earlier is overwritten."""
    if out:
        path = Path(out).expanduser()
        if path.exists() and any(path.iterdir()):
            raise UsageError(f"output folder '{path}' is not empty; choose a new out= (nothing was overwritten)")
    else:
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        path = Path("outputs") / command / stamp
        suffix = 1
        while path.exists():
            path = Path("outputs") / command / f"{stamp}_{suffix}"
            suffix += 1
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_label(label: Any, classes: list[str]) -> int:
    """A class given by name or by index, checked against the model's classes."""
    if not classes or len(classes) < 2:
        raise UsageError("this model is unconditional: it takes no label=")
    if str(label) in classes:
        return classes.index(str(label))
    if isinstance(label, int) or str(label).lstrip("-").isdigit():
        index = int(label)
        if 0 <= index < len(classes):
            return index
    raise UsageError(f"unknown label '{label}'; this model's classes: {', '.join(classes)}")


def labels_for(n: int, label: Any, classes: list[str]) -> Tensor | None:
    """``n`` labels: the given class, or every class in turn, or None (unconditional)."""
    if label is not None:
        return torch.full((n,), resolve_label(label, classes), dtype=torch.long)
    if len(classes) > 1:
        return torch.arange(n) % len(classes)
    return None


def sample_in_batches(model: LoadedModel, n: int, labels: Tensor | None, cfg: DictConfig, batch_size: int,
                      generator: torch.Generator, **kwargs: Any) -> Tensor:
    """``model.module.sample`` over ``n`` items in chunks, with the sampler settings of ``cfg``.

    Tensor keyword arguments with a batch axis of length ``n`` are chunked alongside.
    """
    chunks = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        chunk_kwargs = {k: (v[start:stop] if isinstance(v, Tensor) and v.shape[:1] == (n,) else v)
                        for k, v in kwargs.items()}
        chunks.append(model.module.sample(
            stop - start, None if labels is None else labels[start:stop].to(model.module.device),
            sampler=cfg.sampler.name, steps=cfg.steps, spacing=cfg.sampler.spacing,
            guidance_scale=cfg.guidance, sampler_options=dict(cfg.sampler.get("options") or {}),
            generator=generator, **chunk_kwargs,
        ).float().cpu())
    return torch.cat(chunks)


def save_items(model: LoadedModel, samples: Tensor, labels: Tensor | None, out: Path) -> list[Path]:
    """One media file set per item, named by index and class, plus the overview grid."""
    written: list[Path] = []
    for i, x in enumerate(samples):
        name = f"{i:03d}" if labels is None else f"{i:03d}_{model.classes[int(labels[i])]}"
        written += model.modality.save(x, out / name)
    written += model.modality.save_grid(samples, out / "grid")
    return written


def write_recipe(out: Path, cfg: DictConfig, model: LoadedModel, **extra: Any) -> Path:
    """Everything needed to make the outputs again: command config, seed, checkpoint and hash."""
    recipe = {
        "command": OmegaConf.to_container(cfg, resolve=True),
        "seed": cfg.get("seed"),
        "checkpoint": {"path": str(model.path.resolve()), "sha256": model.sha256},
        "classes": model.classes,
        **extra,
        "model_config": OmegaConf.to_container(model.config, resolve=True),
    }
    path = out / "recipe.yaml"
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(recipe)))
    return path
