"""Builds the objects of a run from its composed config (Hydra ``instantiate``)."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from diffusionkit.modality import ConcatCondition, Modality
from diffusionkit.training.diffusion_module import DiffusionModule


def num_classes_for(classes: list[str]) -> int:
    """Class-conditional when the data has two or more classes, else unconditional (0)."""
    return len(classes) if len(classes) > 1 else 0


def build_modality(cfg: DictConfig) -> Modality:
    return instantiate(cfg.modality)


def build_condition(cfg: DictConfig) -> ConcatCondition | None:
    """The run's concatenated condition (``cond=...``), or None for ``cond=none``."""
    cond = cfg.get("cond")
    if not cond or "_target_" not in cond:
        return None
    return instantiate(cond)


def build_diffusion_module(cfg: DictConfig, modality: Modality, num_classes: int,
                           for_training: bool = True) -> DiffusionModule:
    """The DiffusionModule of a config: the net is sized from the modality, data and condition."""
    condition = build_condition(cfg)
    net = instantiate(cfg.net)(
        spatial_rank=modality.spatial_rank,
        in_channels=modality.channels,
        num_classes=num_classes,
        concat_channels=condition.channels if condition is not None else 0,
    )
    diffusion = cfg.diffusion
    optim: dict[str, Any] = {}
    if for_training:
        optim["optimizer"] = instantiate(cfg.optim.optimizer)
        optim["lr_scheduler"] = instantiate(cfg.optim.lr_scheduler) if cfg.optim.get("lr_scheduler") else None
    return DiffusionModule(
        net=net,
        schedule=instantiate(diffusion.schedule),
        sample_shape=modality.shape,
        prediction=diffusion.prediction,
        loss_weighting=diffusion.loss_weighting,
        min_snr_gamma=diffusion.min_snr_gamma,
        num_classes=num_classes,
        label_dropout=diffusion.label_dropout,
        condition=condition,
        ema_decay=diffusion.ema_decay,
        clip_denoised=diffusion.get("clip_denoised"),
        **optim,
    )
