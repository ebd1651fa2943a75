"""Builds the training side of a run from its composed config: the Lightning modules around the
models that :mod:`diffusionkit.build` makes, with their optimisers."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from diffusionkit.build import (build_autoencoder, build_condition, build_diffusion_model, build_latent_space,
                                build_modality, build_net, build_noise_prior, num_classes_for, weight_shapes)
from diffusionkit.modality import Modality
from diffusionkit.training.autoencoder_module import AutoencoderModule
from diffusionkit.training.diffusion_module import DiffusionModule

__all__ = ["build_autoencoder", "build_autoencoder_module", "build_condition", "build_diffusion_model",
           "build_diffusion_module", "build_latent_space", "build_modality", "build_net", "build_noise_prior",
           "num_classes_for", "weight_shapes"]


def _optimizers(cfg: DictConfig) -> dict[str, Any]:
    return {
        "optimizer": instantiate(cfg.optim.optimizer),
        "lr_scheduler": instantiate(cfg.optim.lr_scheduler) if cfg.optim.get("lr_scheduler") else None,
    }


def build_autoencoder_module(cfg: DictConfig, modality: Modality) -> AutoencoderModule:
    """The first-stage module of ``stage=autoencoder`` runs."""
    stage = cfg.first_stage
    discriminator = None
    if stage.get("discriminator"):
        discriminator = instantiate(stage.discriminator)(spatial_rank=modality.spatial_rank,
                                                         in_channels=modality.channels)
    return AutoencoderModule(
        autoencoder=build_autoencoder(stage.net, modality), recon_loss=stage.recon_loss,
        kl_weight=stage.kl_weight, extra_loss=modality.reconstruction_loss,
        extra_loss_weight=stage.extra_loss_weight, discriminator=discriminator,
        adversarial_weight=stage.adversarial_weight, adversarial_start_step=stage.adversarial_start_step,
        **_optimizers(cfg),
    )


def build_diffusion_module(cfg: DictConfig, modality: Modality, num_classes: int,
                           for_training: bool = True) -> DiffusionModule:
    """The trainer of a config's DiffusionModel (see :func:`diffusionkit.build.build_diffusion_model`),
    with its optimiser unless not ``for_training``."""
    optim = _optimizers(cfg) if for_training else {}
    return DiffusionModule(build_diffusion_model(cfg, modality, num_classes), **optim)
