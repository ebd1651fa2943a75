"""Builds a run's modality and diffusion model from its composed config (Hydra ``instantiate``).

Everything here is what sampling needs, so nothing here imports Lightning; the training side
(:mod:`diffusionkit.training.build`) adds the Lightning modules and optimisers.
"""

from __future__ import annotations

from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torch.overrides import TorchFunctionMode

from diffusionkit.diffusion.model import DiffusionModel
from diffusionkit.diffusion.noise import GaussianNoise
from diffusionkit.errors import UsageError
from diffusionkit.latent import LatentSpace
from diffusionkit.modality import ConcatCondition, Modality
from diffusionkit.nets.autoencoder import AutoencoderKL


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


def build_autoencoder(net_cfg: DictConfig, modality: Modality) -> AutoencoderKL:
    """An AutoencoderKL sized for the modality's channels and spatial rank."""
    autoencoder = instantiate(net_cfg)(spatial_rank=modality.spatial_rank, in_channels=modality.channels)
    try:
        autoencoder.latent_shape(modality.shape)
    except ValueError as err:
        raise UsageError(f"first_stage.net: {err}") from None
    return autoencoder


def build_latent_space(cfg: DictConfig, modality: Modality) -> LatentSpace | None:
    """The frozen latent space of ``autoencoder=pretrained`` runs (weights loaded separately)."""
    first_stage = (cfg.get("autoencoder") or {}).get("net")
    if not first_stage:
        return None
    return LatentSpace(build_autoencoder(first_stage, modality), float(cfg.autoencoder.scale_factor))


def build_noise_prior(diffusion: DictConfig, item_shape: tuple[int, ...]) -> GaussianNoise | None:
    """``diffusion.noise`` (None where a config predates it: independent Gaussian noise), checked
    against the shape the diffusion runs in."""
    if not diffusion.get("noise"):
        return None
    prior = instantiate(diffusion.noise)
    try:
        prior.check(item_shape)
    except ValueError as err:
        raise UsageError(f"diffusion.noise: {err}") from None
    return prior


def _item_shape(modality: Modality, latent: LatentSpace | None) -> tuple[int, ...]:
    """The shape the diffusion runs in: the data's, or its latent's."""
    return tuple(latent.latent_shape(modality.shape)) if latent is not None else tuple(modality.shape)


def build_net(cfg: DictConfig, modality: Modality, num_classes: int, condition: ConcatCondition | None,
              latent: LatentSpace | None) -> nn.Module:
    """The denoising network, sized from the modality (or its latent), classes and condition."""
    return instantiate(cfg.net)(
        spatial_rank=modality.spatial_rank,
        in_channels=_item_shape(modality, latent)[0],
        num_classes=num_classes,
        concat_channels=condition.channels if condition is not None else 0,
    )


class _NoInitialisation(TorchFunctionMode):
    """Skips the fills that initialise new weights (``torch.nn.init.*`` and the random in-place
    fills beneath them). On the meta device they fill nothing, yet the first one loads torch's
    compiler (``torch._dynamo``: seconds at a command's start)."""

    TENSOR_FILLS = frozenset({torch.Tensor.normal_, torch.Tensor.uniform_})

    @classmethod
    def skipped(cls, func: Any) -> bool:
        """A random fill, or a public in-place initialiser of ``torch.nn.init`` (``kaiming_uniform_``)."""
        name = getattr(func, "__name__", "")
        return func in cls.TENSOR_FILLS or (getattr(func, "__module__", None) == "torch.nn.init"
                                            and name.endswith("_") and not name.startswith("_"))

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if self.skipped(func):
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def weight_shapes(cfg: DictConfig, modality: Modality, num_classes: int) -> dict[str, tuple[int, ...]]:
    """The names and shapes of the weights a config's model has (``net.*``, ``latent.*``), found
    on the meta device: nothing is allocated, so a config asking for a huge model costs nothing."""
    with torch.device("meta"), _NoInitialisation():
        latent = build_latent_space(cfg, modality)
        net = build_net(cfg, modality, num_classes, build_condition(cfg), latent)
    parts = {"net": net, "latent": latent}
    return {f"{prefix}.{name}": tuple(t.shape) for prefix, part in parts.items() if part is not None
            for name, t in part.state_dict().items()}


def build_diffusion_model(cfg: DictConfig, modality: Modality, num_classes: int) -> DiffusionModel:
    """The DiffusionModel of a config: the net is sized from the modality, data and condition."""
    condition = build_condition(cfg)
    latent = build_latent_space(cfg, modality)
    diffusion = cfg.diffusion
    return DiffusionModel(
        net=build_net(cfg, modality, num_classes, condition, latent),
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
        latent=latent,
        noise_prior=build_noise_prior(diffusion, _item_shape(modality, latent)),
    )
