"""Low-rank adaptation of a net's linear and convolution layers (Hu et al. 2022, "LoRA: Low-Rank
Adaptation of Large Language Models"), for any spatial rank.

A frozen layer ``W`` gains a trainable residual ``scale * up(down(x))``: ``down`` is the layer's
own kind (same kernel, stride, padding) with ``rank`` outputs, ``up`` a 1-wide map back with
zero initial weights, so training starts from the base's outputs exactly. ``scale = alpha /
rank``. After training the pair folds into the layer's weight (:func:`merged_weight`), so a
model with an adapter samples at the base's speed and never needs this module.

Why not ``peft``: its LoRA needs transformers and accelerate at import (seconds of a command's
start and a large dependency), its layers must stay injected to load an adapter, and its
``state_dict`` names follow its own wrapping. These few lines cover ``Conv1d/2d/3d`` and
``Linear`` alike, and the adapter file stays plain tensors under the base's own layer names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from diffusionkit.errors import UsageError

#: the layer kinds that can carry an adapter (grouped convolutions cannot: their weight mixes no channels)
ADAPTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class LoRA(nn.Module):
    """``base(x) + scale * up(down(x))`` around a frozen ``base`` layer."""

    def __init__(self, base: nn.Module, rank: int, alpha: float) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be at least 1, got {rank}")
        self.base = base.requires_grad_(False)
        self.scale = float(alpha) / rank
        if isinstance(base, nn.Linear):
            self.down = nn.Linear(base.in_features, rank, bias=False)
            self.up = nn.Linear(rank, base.out_features, bias=False)
        else:
            conv = type(base)
            self.down = conv(base.in_channels, rank, base.kernel_size, stride=base.stride, padding=base.padding,
                             dilation=base.dilation, bias=False)
            self.up = conv(rank, base.out_channels, 1, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=5**0.5)
        nn.init.zeros_(self.up.weight)
        self.to(base.weight.device, base.weight.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + self.scale * self.up(self.down(x))

    @property
    def weight(self) -> Tensor:
        """The adapted weight (for parents that use a layer's weight directly: gradients reach the factors)."""
        return merged_weight(self.base.weight, self.down.weight, self.up.weight, self.scale)

    @property
    def bias(self) -> Tensor | None:
        return self.base.bias


def adaptable_layers(net: nn.Module, targets: str) -> list[str]:
    """Names of ``net``'s layers that can carry an adapter and whose name matches the regular
    expression ``targets`` (searched, e.g. ``"attention|emb_layers"``; ``".*"``: all of them)."""
    try:
        pattern = re.compile(targets)
    except re.error as err:
        raise UsageError(f"targets={targets!r} is not a regular expression ({err}); e.g. targets=\"qkv|proj\"") from None
    return [name for name, module in net.named_modules()
            if isinstance(module, ADAPTABLE) and getattr(module, "groups", 1) == 1 and pattern.search(name)]


def _parent(net: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, child = name.rpartition(".")
    return (net.get_submodule(parent_name) if parent_name else net), child


def add_lora(net: nn.Module, names: Iterable[str], rank: int, alpha: float) -> dict[str, LoRA]:
    """Wrap each named layer of ``net`` in :class:`LoRA` (in place); returns the wrappers by name."""
    added = {}
    for name in names:
        parent, child = _parent(net, name)
        added[name] = LoRA(getattr(parent, child), rank, alpha)
        setattr(parent, child, added[name])
    return added


@torch.no_grad()
def fold_lora(net: nn.Module, names: Iterable[str]) -> None:
    """Undo :func:`add_lora` keeping what was learned: each named wrapper of ``net`` becomes its
    base layer with the low-rank update folded into the weight."""
    for name in names:
        parent, child = _parent(net, name)
        wrapper = getattr(parent, child)
        wrapper.base.weight.copy_(wrapper.weight)
        setattr(parent, child, wrapper.base)


def lora_weights(added: dict[str, LoRA]) -> dict[str, Tensor]:
    """The trained low-rank factors as ``<layer>.lora_down`` / ``<layer>.lora_up`` tensors."""
    weights = {}
    for name, layer in added.items():
        weights[f"{name}.lora_down"] = layer.down.weight.detach().cpu()
        weights[f"{name}.lora_up"] = layer.up.weight.detach().cpu()
    return weights


def merged_weight(weight: Tensor, down: Tensor, up: Tensor, scale: float) -> Tensor:
    """``weight + scale * up @ down`` for a linear layer (``[out, in]``) or a convolution
    (``[out, in, *kernel]``, ``down: [rank, in, *kernel]``, ``up: [out, rank, 1...]``)."""
    check_factors(weight.shape, down.shape, up.shape)
    delta = torch.einsum("or,r...->o...", up.flatten(1).to(weight.dtype), down.to(weight.dtype))
    return weight + scale * delta


def check_factors(weight: Sequence[int], down: Sequence[int], up: Sequence[int]) -> None:
    """ValueError unless ``down`` ``[rank, in, *kernel]`` and ``up`` ``[out, rank, 1...]`` are the
    low-rank factors of a weight of shape ``weight`` (checked before anything is computed)."""
    weight, down, up = tuple(weight), tuple(down), tuple(up)
    fits = (len(down) == len(up) == len(weight) >= 2 and down[0] >= 1 and down[1:] == weight[1:]
            and up[:2] == (weight[0], down[0]) and all(k == 1 for k in up[2:]))
    if not fits:
        raise ValueError(f"low-rank factors {list(down)} x {list(up)} do not fit a weight of shape {list(weight)}")
