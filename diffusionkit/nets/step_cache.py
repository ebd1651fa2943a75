"""Work that depends on a sampling run's conditions alone, done once per run instead of once per step.

A sampler calls the net at every step with the very same condition tensors, so what the net
derives from them alone (each conditioner's output, the keys and values that every
cross-attention layer projects from a text context) comes out the same at every step. Inside
:func:`conditions_fixed` such a result is kept, keyed by the identity and in-place version of the
tensors it came from, and handed back while they are unchanged: the later steps get the tensors
the first step computed, so the samples are bit for bit what they would be without it (diffusers
likewise encodes a prompt once before its loop; this extends that to the layers' projections).

Outside the scope (training, a plain forward) and wherever a gradient is being recorded,
nothing is kept. Each thread has its own scope (a ``ContextVar``), so pages serving several
users at once never share one. What is kept must be a pure function of its inputs: a
conditioner's ``forward`` draws nothing at random when sampling, and a backbone never changes
its conditioning tensors in place (see :class:`~diffusionkit.nets.conditioners.Conditioner`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import torch
from torch import Tensor

T = TypeVar("T")

#: an inference-mode tensor has no version counter; it cannot be changed in place outside
#: inference mode, and a sampling run never changes its conditions, so its identity is its key
_NO_VERSION = -1

#: per thread: owner -> (the inputs with their versions, the variant, the result); None outside a scope
_KEPT: ContextVar[dict[object, tuple[tuple[tuple[Tensor, int], ...], Hashable, object]] | None] = \
    ContextVar("diffusionkit_step_cache", default=None)


@contextmanager
def conditions_fixed() -> Iterator[None]:
    """Within this block, :func:`once_per_run` keeps results; they are dropped when it ends."""
    token = _KEPT.set({})
    try:
        yield
    finally:
        _KEPT.reset(token)


def _version(tensor: Tensor) -> int:
    return _NO_VERSION if tensor.is_inference() else tensor._version


def once_per_run(owner: object, inputs: tuple[Tensor, ...], compute: Callable[[], T], variant: Hashable = None) -> T:
    """``compute()``, or, inside :func:`conditions_fixed`, the result ``owner`` last computed from
    these very ``inputs`` (the same tensor objects, not modified in place since) and an equal
    ``variant`` (what else the result depends on, e.g. the dtype it is computed in)."""
    kept = _KEPT.get()
    if kept is None or torch.is_grad_enabled():
        return compute()
    entry = kept.get(owner)
    if entry is not None and entry[1] == variant and len(entry[0]) == len(inputs) and all(
            old is new and version == _version(new) for (old, version), new in zip(entry[0], inputs)):
        return entry[2]  # type: ignore[return-value]
    result = compute()
    # owner and inputs are held, so no other object can take their ids while the result is kept
    kept[owner] = (tuple((t, _version(t)) for t in inputs), variant, result)
    return result
