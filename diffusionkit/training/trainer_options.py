"""The ``trainer`` presets: Lightning ``Trainer`` arguments, plus options diffusionkit applies to
the module itself (``channels_last``, ``compile``), which the ``Trainer`` does not take."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf
from torch import nn

from diffusionkit.devices import native_bf16, to_channels_last
from diffusionkit.errors import UsageError
from diffusionkit.training.checkpoint_io import SafeCheckpointIO

#: keys of a ``trainer`` preset that are not Trainer arguments.
MODULE_OPTIONS = ("channels_last", "compile")


def build_trainer(trainer_cfg: DictConfig, has_unused_parameters: bool = False, **kwargs: Any) -> pl.Trainer:
    """A Lightning Trainer from a ``trainer`` preset; checkpoints go through
    :class:`SafeCheckpointIO` (atomic writes, ``weights_only`` reads). ``has_unused_parameters``
    (a module whose backward passes leave some weights without gradients) makes ``ddp`` look for them."""
    arguments = {k: v for k, v in OmegaConf.to_container(trainer_cfg).items() if k not in MODULE_OPTIONS}
    arguments["precision"] = lightning_precision(arguments.get("precision", "auto"), arguments.get("accelerator"))
    if has_unused_parameters and arguments.get("strategy") == "ddp":
        arguments["strategy"] = "ddp_find_unused_parameters_true"
    extra = arguments.pop("plugins", None)
    plugins = [*(list(instantiate(extra)) if extra else []), SafeCheckpointIO()]
    try:
        return instantiate(arguments, plugins=plugins, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, MisconfigurationException):  # e.g. trainer=gpu on a machine without one
            hint = "; without a GPU use trainer=cpu or trainer=ddp_cpu" if arguments.get("accelerator") != "cpu" else ""
            raise UsageError(f"trainer: {str(err.__cause__).splitlines()[0]}{hint}") from None
        raise


def lightning_precision(precision: Any, accelerator: str | None) -> Any:
    """A preset's ``precision``, with ``auto`` resolved: ``bf16-mixed`` where the accelerator
    computes bf16 natively (:func:`diffusionkit.devices.native_bf16`), else ``32-true``."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if on_gpu else "cpu")
    return "bf16-mixed" if native_bf16(device) else "32-true"


def apply_module_options(module: pl.LightningModule, trainer_cfg: DictConfig, spatial_rank: int) -> None:
    """Apply a preset's ``channels_last`` and ``compile`` to a module before training.

    ``compile`` compiles the trained network in place (``nn.Module.compile``): its parameter
    names, hence checkpoints and bundles, stay those of the plain network; sampling from the EMA
    copy stays eager, so logged samples need no second compilation."""
    if trainer_cfg.get("channels_last"):
        to_channels_last(module, spatial_rank)
    if trainer_cfg.get("compile"):
        owner = getattr(module, "model", module)  # a DiffusionModule's networks live in its DiffusionModel
        for name in ("net", "autoencoder"):
            network = getattr(owner, name, None)
            if isinstance(network, nn.Module):
                network.compile()
