"""The ``fsdp`` preset's strategy: Lightning's fully sharded data parallel (Zhao et al. 2023,
"PyTorch FSDP"), wrapped so that the EMA stays a local, element-wise update."""

from __future__ import annotations

from typing import Any, Sequence

from hydra.utils import get_class
from lightning.pytorch.strategies import FSDPStrategy


def fsdp_strategy(wrap: Sequence[str], **kwargs: Any) -> FSDPStrategy:
    """An ``FSDPStrategy`` in which every module of the classes named in ``wrap`` (dotted paths)
    is its own sharded unit, with ``use_orig_params``.

    The trained network and its EMA copy are instances of the same classes, so both are wrapped
    alike: each process holds matching slices of a weight and of its average, and the EMA update
    after each optimizer step needs no communication. Other keyword arguments go to
    ``FSDPStrategy`` (``sharding_strategy``, ``cpu_offload``, ``state_dict_type``, ...)."""
    return FSDPStrategy(auto_wrap_policy={get_class(name) for name in wrap}, use_orig_params=True, **kwargs)
