"""Adapter files: what ``diffusionkit finetune`` learns on top of a bundle, kept apart from it.

An adapter is a ``.safetensors`` file of plain tensors and text, never code: the low-rank
factors of the adapted layers (:mod:`diffusionkit.nets.lora`) under the base net's own layer
names, the class embeddings (the base's classes first, then the new ones), and metadata naming
its base (a shipped name or a path) and that base's sha256. Loading one loads the base, checks
the hash, adds the classes and folds the factors into the weights (scaled by ``adapter_scale``),
so sampling runs at the base's speed (:func:`diffusionkit.bundle.load_model` does it when given an
adapter). Nothing here changes a file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from diffusionkit.errors import UsageError
from diffusionkit.names import check_class_names
from diffusionkit.nets.conditioners import LABEL, ClassLabel
from diffusionkit.nets.lora import ADAPTABLE, merged_weight

if TYPE_CHECKING:
    from diffusionkit.diffusion.model import DiffusionModel

ADAPTER_KIND = "adapter"
#: where the low-rank factors live in an adapter file: ``lora.<layer>.lora_down`` / ``.lora_up``
LORA_PREFIX = "lora."
#: the class-label conditioner's embedding table after fine-tuning
CLASS_TABLE = "classes.embedding"
MAX_RANK = 256
MAX_SCALE = 1000.0
#: the longest class list text an adapter may hold
MAX_CLASSES_TEXT = 1 << 20
#: the number types an adapter's tensors may have
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True)
class Adapter:
    """An adapter file as read (and checked against nothing yet but itself)."""

    path: Path
    base: str
    base_sha256: str
    classes: list[str]
    scale: float  # alpha / rank
    factors: dict[str, tuple[Tensor, Tensor]]  # layer -> (down, up)
    class_table: Tensor | None


def adapter_metadata(base: str, base_sha256: str, classes: list[str], rank: int, alpha: float,
                     **extra: str) -> dict[str, str]:
    """An adapter file's text: its kind, base, the base's hash, classes, rank and alpha."""
    return {"kind": ADAPTER_KIND, "base": base, "base_sha256": base_sha256, "classes": json.dumps(classes),
            "rank": str(rank), "alpha": str(alpha), **extra}


def read_adapter(path: Path, weights: dict[str, Tensor], metadata: dict[str, str]) -> Adapter:
    """The adapter in ``path``'s tensors and metadata; UsageError (one line) for anything that
    is not a well-formed adapter."""
    where = f"adapter '{path}'"
    base, sha = metadata.get("base"), metadata.get("base_sha256", "")
    if not base or not isinstance(base, str):
        raise UsageError(f"{where} names no base model ('base' is missing)")
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise UsageError(f"{where}: its base_sha256 is not a sha256")
    text = metadata.get("classes", "[]")
    try:
        if len(text) > MAX_CLASSES_TEXT:
            raise ValueError("too long")
        classes = check_class_names(json.loads(text), where)
        rank, alpha = int(metadata.get("rank", "")), float(metadata.get("alpha", ""))
    except (TypeError, ValueError, RecursionError):
        raise UsageError(f"{where}: its classes, rank or alpha are not readable") from None
    if not 1 <= rank <= MAX_RANK or not math.isfinite(alpha) or not 0 < abs(alpha / rank) <= MAX_SCALE:
        raise UsageError(f"{where}: rank {rank} and alpha {alpha} are out of range (rank 1..{MAX_RANK})")
    factors: dict[str, tuple[Tensor, Tensor]] = {}
    for key in weights:
        if key == CLASS_TABLE:
            continue
        if not key.startswith(LORA_PREFIX) or not key.endswith((".lora_down", ".lora_up")):
            raise UsageError(f"{where} holds '{key}', which is no part of an adapter")
        layer = key[len(LORA_PREFIX):].rsplit(".", 1)[0]
        down, up = weights.get(f"{LORA_PREFIX}{layer}.lora_down"), weights.get(f"{LORA_PREFIX}{layer}.lora_up")
        if down is None or up is None:
            raise UsageError(f"{where}: layer '{layer}' has only one of its two low-rank factors")
        if down.ndim < 2 or down.shape[0] != rank:
            raise UsageError(f"{where}: layer '{layer}' has factors of rank {list(down.shape)[:1]}, not its rank {rank}")
        factors[layer] = (down, up)
    for name, tensor in weights.items():
        if tensor.dtype not in FLOATS or not bool(torch.isfinite(tensor).all()):
            raise UsageError(f"{where}: '{name}' holds values that are not finite float numbers")
    return Adapter(path, base, sha, classes, alpha / rank, factors, weights.get(CLASS_TABLE))


def base_path(adapter: Adapter, resolve_checkpoint: Callable[[str], Path]) -> Path:
    """The base bundle an adapter names: beside the adapter (a relative name, or the file name of
    a path: the two moved together), as a path, or a shipped bundle (``resolve_checkpoint``: how
    a command finds a ``ckpt=``). A name that leads nowhere readable is one UsageError line."""
    try:
        named = Path(adapter.base).expanduser()
        beside = [] if named.is_absolute() else [adapter.path.parent / named]
        for candidate in (*beside, None, adapter.path.parent / named.name):
            if candidate is None:
                try:
                    candidate = resolve_checkpoint(adapter.base)
                except UsageError:
                    continue
            if candidate.suffix == ".safetensors" and candidate.is_file():
                return candidate
    except (OSError, RuntimeError, ValueError):
        pass
    raise UsageError(f"adapter '{adapter.path}': its base '{adapter.base}' is not found; put the base bundle "
                     f"beside the adapter or install the plugin that ships it")


def apply_adapter(model: DiffusionModel, adapter: Adapter, scale: float = 1.0) -> None:
    """Fold the adapter into ``model`` (its net and EMA weights): the class table first (base
    classes blended by ``scale``, new classes as trained), then each layer's low-rank update
    times ``scale``. UsageError where the adapter does not fit this model."""
    where = f"adapter '{adapter.path}'"
    for net in dict.fromkeys((model.net, model.sampling_net)):  # one net in a model without an EMA
        _apply_class_table(net, adapter, scale, where)
        for layer, (down, up) in adapter.factors.items():
            try:
                module = net.get_submodule(layer)
            except AttributeError:
                raise UsageError(f"{where}: its base has no layer '{layer}'") from None
            if not isinstance(module, ADAPTABLE):
                raise UsageError(f"{where}: '{layer}' of its base is a {type(module).__name__}, not a layer an "
                                 f"adapter changes")
            with torch.no_grad():
                try:
                    module.weight.copy_(merged_weight(module.weight, down, up, adapter.scale * scale))
                except (ValueError, RuntimeError) as err:
                    raise UsageError(f"{where}: '{layer}': {err}") from None


def _apply_class_table(net: torch.nn.Module, adapter: Adapter, scale: float, where: str) -> None:
    if adapter.class_table is None:
        if LABEL in net.conditioners and len(adapter.classes) != net.conditioners[LABEL].num_classes:
            raise UsageError(f"{where} names {len(adapter.classes)} classes but holds no class embeddings")
        return
    label = net.conditioners[LABEL] if LABEL in net.conditioners else None
    if not isinstance(label, ClassLabel) or label.embedder is None:
        raise UsageError(f"{where} holds class embeddings, but its base has no class labels")
    old = label.embedder.embedding.weight.detach().clone()
    count = len(adapter.classes)
    if count < label.num_classes or tuple(adapter.class_table.shape) != (count + 1, old.shape[1]):
        raise UsageError(f"{where}: its class embeddings have shape {list(adapter.class_table.shape)}, the base "
                         f"needs [{count + 1}, {old.shape[1]}] for {count} classes")
    base_count = label.num_classes
    label.resize(count)
    table = adapter.class_table.to(old.dtype)
    with torch.no_grad():
        rows = label.embedder.embedding.weight
        rows.copy_(table)
        kept = list(range(base_count)) + [count]  # the base's classes and its null class (now last)
        base_rows = torch.cat([old[:base_count], old[-1:]])
        rows[kept] = base_rows + scale * (table[kept] - base_rows)
