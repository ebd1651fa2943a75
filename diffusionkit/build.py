"""Builds a run's modality and diffusion model from its composed config (Hydra ``instantiate``).

Everything here is what sampling needs, so nothing here imports Lightning; the training side
(:mod:`diffusionkit.training.build`) adds the Lightning modules and optimisers.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torch.overrides import TorchFunctionMode

from diffusionkit.diffusion.model import DiffusionModel
from diffusionkit.diffusion.noise import GaussianNoise
from diffusionkit.errors import UsageError, first_line
from diffusionkit.latent import LatentSpace
from diffusionkit.modality import ConcatCondition, Modality
from diffusionkit.nets.autoencoder import AutoencoderKL
from diffusionkit.nets.conditioned_net import ConditionedNet, conditioning_widths
from diffusionkit.nets.conditioners import LABEL, ClassLabel, ConcatSignal, Conditioner
from diffusionkit.text_encoders import TextEncoder


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


def build_conditioners(cfg: DictConfig, num_classes: int, modality: Modality) -> dict[str, Conditioner]:
    """The model's named conditions: class labels (``"label"``, dropped with
    ``diffusion.label_dropout``) for a class-conditional model, the concatenated condition of
    ``cond=...`` under its input name (dropped with ``diffusion.cond_dropout``, default 0:
    always given), and every entry of ``conditioners:`` (a plugin's or a
    config's own :class:`~diffusionkit.nets.conditioners.Conditioner`), each shown the modality
    (:meth:`Conditioner.use_modality`)."""
    conditioners: dict[str, Conditioner] = {}
    if num_classes:
        conditioners[LABEL] = ClassLabel(num_classes, drop=float(cfg.diffusion.get("label_dropout", 0.1)))
    condition = build_condition(cfg)
    if condition is not None:
        conditioners[condition.input_name] = ConcatSignal(condition, drop=float(cfg.diffusion.get("cond_dropout", 0.0)))
    for name, spec in (cfg.get("conditioners") or {}).items():
        if name in conditioners:
            raise UsageError(f"conditioners.{name}: the name '{name}' is taken by the model's own {name} condition")
        conditioner = instantiate(spec)
        if not isinstance(conditioner, Conditioner):
            raise UsageError(f"conditioners.{name} builds a {type(conditioner).__name__}, not a Conditioner")
        conditioners[str(name)] = conditioner
    for conditioner in conditioners.values():
        conditioner.use_modality(modality)
    needing = [name for name, c in conditioners.items() if getattr(c, "needs_text_encoder", False)]
    if needing:
        encoder = build_text_encoder(cfg, needing)
        for name in needing:
            conditioners[name].use_text_encoder(encoder)  # type: ignore[attr-defined]
    return conditioners


def build_text_encoder(cfg: DictConfig, needed_by: list[str]) -> TextEncoder:
    """The run's ``text_encoder:`` (one per model, shared by its text conditioners); it loads
    its weights only when it first encodes a text."""
    spec = cfg.get("text_encoder")
    if not spec or "_target_" not in spec:
        raise UsageError(f"conditioners {needed_by} need a text encoder: add text_encoder=minilm")
    encoder = instantiate(spec)
    if not isinstance(encoder, TextEncoder):
        raise UsageError(f"text_encoder builds a {type(encoder).__name__}, not a TextEncoder")
    return encoder


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


def build_net(cfg: DictConfig, modality: Modality, conditioners: dict[str, Conditioner],
              latent: LatentSpace | None) -> nn.Module:
    """The denoising backbone, sized from the modality (or its latent) and what the conditioners
    feed it (concatenated channels, a context's width)."""
    factory = instantiate(cfg.net)
    item_shape = _item_shape(modality, latent)
    sizes = dict(spatial_rank=modality.spatial_rank, in_channels=item_shape[0], **conditioning_widths(conditioners))
    try:
        net = factory(**sizes)
    except UsageError:
        raise
    except TypeError as err:
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(err))
        if unknown is None:
            raise
        raise UsageError(f"net: {_name(factory)} takes no option '{unknown.group(1)}' (set by an override or by an "
                         f"experiment written for another net); drop it, or choose the net it belongs to") from err
    except ValueError as err:  # the net refused a combination of its options
        raise UsageError(f"net: {_name(factory)}: {first_line(err)} (check the net.* options)") from err
    _check_fits(net, item_shape[1:])
    return net


def _check_fits(net: nn.Module, spatial: tuple[int, ...]) -> None:
    """One line, before any training, when the item's spatial size is not a multiple of what the
    net needs per axis (its ``downsample_factors``: patch size times its levels' downsampling)."""
    factors = getattr(net, "downsample_factors", None)
    if factors is None or len(factors) != len(spatial):
        return
    if any(size % factor for size, factor in zip(spatial, factors)):
        raise UsageError(f"net: {type(net).__name__}: the items' spatial size {list(spatial)} is not a multiple of "
                         f"{list(factors)}, which its patch size and levels need (check net.patch_size, or "
                         "net.channel_mult's number of levels)")


def _name(factory: Any) -> str:
    """The class or function a (partial) net factory builds."""
    return getattr(getattr(factory, "func", factory), "__name__", type(factory).__name__)


class NoInitialisation(TorchFunctionMode):
    """Skips the fills that initialise new weights (``torch.nn.init.*`` and the random in-place
    fills beneath them). On the meta device they fill nothing, yet the first one loads torch's
    compiler (``torch._dynamo``: seconds at a command's start); for a model whose weights are
    loaded next they are wasted work."""

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
    with torch.device("meta"), NoInitialisation():
        latent = build_latent_space(cfg, modality)
        conditioners = build_conditioners(cfg, num_classes, modality)
        net = ConditionedNet(build_net(cfg, modality, conditioners, latent), conditioners)
    parts = {"net": net, "latent": latent}
    return {f"{prefix}.{name}": tuple(t.shape) for prefix, part in parts.items() if part is not None
            for name, t in part.state_dict().items()}


def build_diffusion_model(cfg: DictConfig, modality: Modality, num_classes: int, ema: bool = True) -> DiffusionModel:
    """The DiffusionModel of a config: the net is sized from the modality, data and conditions;
    ``ema=False`` for a model that only samples (no EMA copy of the net)."""
    conditioners = build_conditioners(cfg, num_classes, modality)
    latent = build_latent_space(cfg, modality)
    diffusion = cfg.diffusion
    return DiffusionModel(
        net=build_net(cfg, modality, conditioners, latent),
        schedule=instantiate(diffusion.schedule),
        sample_shape=modality.shape,
        prediction=diffusion.prediction,
        loss_weighting=diffusion.loss_weighting,
        min_snr_gamma=diffusion.min_snr_gamma,
        conditioners=conditioners,
        ema_decay=diffusion.ema_decay,
        clip_denoised=diffusion.get("clip_denoised"),
        latent=latent,
        noise_prior=build_noise_prior(diffusion, _item_shape(modality, latent)),
        ema=ema,
    )
