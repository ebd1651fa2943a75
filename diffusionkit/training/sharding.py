"""The ``fsdp`` preset's strategy: Lightning's fully sharded data parallel (Zhao et al. 2023,
"PyTorch FSDP"), wrapped so that the EMA stays a local, element-wise update."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from lightning.pytorch.strategies import FSDPStrategy

from diffusionkit.errors import UsageError
from diffusionkit.trusted_targets import resolve_target


def fsdp_strategy(wrap: Sequence[str], **kwargs: Any) -> FSDPStrategy:
    """An ``FSDPStrategy`` in which every module of the classes named in ``wrap`` (dotted paths)
    is its own sharded unit, with ``use_orig_params``.

    The trained network and its EMA copy are instances of the same classes, so both are wrapped
    alike: each process holds matching slices of a weight and of its average, and the EMA update
    after each optimizer step needs no communication. Other keyword arguments go to
    ``FSDPStrategy`` (``sharding_strategy``, ``cpu_offload``, ``state_dict_type``, ...)."""
    return FSDPStrategy(auto_wrap_policy={_layer_class(name) for name in wrap}, use_orig_params=True, **kwargs)


def _layer_class(name: str) -> type[torch.nn.Module]:
    """The layer class ``name`` names, resolved without leaving its package (never an arbitrary
    import: the names may come from a run folder's config)."""
    try:
        layer = resolve_target(name)
    except UsageError as err:
        raise UsageError(f"trainer.strategy.wrap: {err}") from None
    if not (isinstance(layer, type) and issubclass(layer, torch.nn.Module)):
        raise UsageError(f"trainer.strategy.wrap: '{name}' is not a torch.nn.Module class")
    return layer
