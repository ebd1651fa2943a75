"""Portable model bundles: one safetensors file holding weights, resolved config and classes.

A bundle (or a Lightning checkpoint of a diffusionkit run) from elsewhere is data, not code:
weights load through safetensors or ``torch.load(weights_only=True)``, and the config may
only name ``_target_`` classes owned by the core, an installed plugin or torch itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from diffusionkit.errors import UsageError
from diffusionkit.modality import Modality
from diffusionkit.plugins import owned_modules
from diffusionkit.training.diffusion_module import DiffusionModule

FORMAT = "diffusionkit.bundle/1"
#: third-party modules a config may name besides the core and installed plugins.
TRUSTED_MODULES = ("torch", "lightning")
#: the key of diffusionkit's metadata inside a Lightning checkpoint.
CHECKPOINT_KEY = "diffusionkit"


@dataclass
class LoadedModel:
    """A model ready to sample: its module (eval mode), modality, run config and classes."""

    module: DiffusionModule
    modality: Modality
    config: DictConfig
    classes: list[str]
    path: Path
    sha256: str


def run_metadata(config: DictConfig, classes: list[str]) -> dict[str, str]:
    """The plain-text metadata a bundle or checkpoint carries: enough to rebuild the model."""
    return {
        "format": FORMAT,
        "config": OmegaConf.to_yaml(config, resolve=True),
        "classes": json.dumps(list(classes)),
    }


def save_bundle(path: str | Path, module: DiffusionModule, config: DictConfig, classes: list[str]) -> Path:
    """Write the EMA weights and the resolved config as one ``.safetensors`` file."""
    path = Path(path)
    weights = {f"net.{k}": v.detach().cpu().contiguous() for k, v in module.ema.module.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(weights, str(tmp), metadata=run_metadata(config, classes))
    tmp.replace(path)  # never leave a half-written bundle where a good one was
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_targets(node: Any, allowed: tuple[str, ...], where: str = "config") -> None:
    """Refuse a config that would instantiate a class from an unknown module."""
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and str(target).split(".")[0] not in allowed:
            raise UsageError(
                f"{where} names _target_ '{target}', which neither diffusionkit nor an installed "
                f"plugin owns; refusing to build it (install the plugin that provides it)"
            )
        for value in node.values():
            check_targets(value, allowed, where)
    elif isinstance(node, list):
        for value in node:
            check_targets(value, allowed, where)


def _read_bundle(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UsageError(f"cannot read bundle '{path}': {str(err).splitlines()[0]}") from None
    net_weights = {k.removeprefix("net."): v for k, v in weights.items() if k.startswith("net.")}
    return net_weights, metadata


def _read_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and safety errors all mean the same to the user
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"cannot read checkpoint '{path}' safely: {reason}") from None
    metadata = checkpoint.get(CHECKPOINT_KEY) if isinstance(checkpoint, dict) else None
    if not metadata:
        raise UsageError(f"'{path}' is not a diffusionkit checkpoint (no '{CHECKPOINT_KEY}' metadata)")
    state = checkpoint.get("state_dict", {})
    net_weights = {k.removeprefix("ema.module."): v for k, v in state.items() if k.startswith("ema.module.")}
    return net_weights, metadata


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a bundle (``.safetensors``) or a Lightning checkpoint (``.ckpt``) for sampling."""
    from diffusionkit.training.build import build_diffusion_module, build_modality, num_classes_for

    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"checkpoint '{path}' not found; pass ckpt=<model.safetensors or a .ckpt file>")
    reader = _read_checkpoint if path.suffix == ".ckpt" else _read_bundle
    weights, metadata = reader(path)
    if metadata.get("format") != FORMAT:
        raise UsageError(f"'{path}' is not a diffusionkit bundle (format '{metadata.get('format')}')")
    config = OmegaConf.create(metadata["config"])
    check_targets(OmegaConf.to_container(config), (*owned_modules(), *TRUSTED_MODULES), where=str(path))
    classes = json.loads(metadata.get("classes", "[]"))
    modality = build_modality(config)
    module = build_diffusion_module(config, modality, num_classes=num_classes_for(classes),
                                    for_training=False)
    try:
        module.net.load_state_dict(weights)
    except RuntimeError as err:
        raise UsageError(f"weights in '{path}' do not fit its config: {str(err).splitlines()[0]}") from None
    module.ema.module.load_state_dict(weights)
    module.to(device).eval()
    return LoadedModel(module, modality, config, classes, path, file_sha256(path))
