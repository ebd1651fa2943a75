"""A denoising net together with the conditioners that feed it: the module a model trains,
averages (EMA) and stores.

``ConditionedNet(x, t, **values)`` runs each named conditioner on its values and hands the
backbone what it consumes: the sum of the vectors (added to the time embedding), the
concatenated channels and the concatenated token sequences (cross-attention context); a
conditioner's optional pooled vector joins the sum. A
backbone is any net called as ``backbone(x, t, vector=, concat=, context=)`` that exposes its
``embedding_dim`` (:class:`~diffusionkit.nets.unet.UNet`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from diffusionkit.nets.conditioners import CONCAT, LABEL, SEQUENCE, VECTOR, Conditioner
from diffusionkit.nets.step_cache import once_per_run

#: where weights lived before conditioners were parts of their own: the class embedding was the
#: backbone's, and the backbone's weights had no prefix (see :func:`upgrade_legacy_names`)
LEGACY_NAMES = {"class_embed.embedding.weight": f"conditioners.{LABEL}.embedder.embedding.weight"}


def conditioning_widths(conditioners: Mapping[str, Conditioner]) -> dict[str, int]:
    """What a backbone must be built to consume: ``concat_channels`` (the concatenated
    conditioners' channels together) and ``context_dim`` (the token width every sequence
    conditioner shares; 0 without one)."""
    concat = sum(c.width for c in conditioners.values() if c.kind == CONCAT)
    widths = {c.width for c in conditioners.values() if c.kind == SEQUENCE}
    if len(widths) > 1:
        raise ValueError(f"sequence conditioners must share one token width, got {sorted(widths)}")
    return {"concat_channels": concat, "context_dim": widths.pop() if widths else 0}


class ConditionedNet(nn.Module):
    """``backbone`` fed by named ``conditioners`` (each gets its :attr:`Conditioner.name`, and
    vector ones are bound to the backbone's embedding width)."""

    def __init__(self, backbone: nn.Module, conditioners: Mapping[str, Conditioner] | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.conditioners = nn.ModuleDict(dict(conditioners or {}))
        for name, conditioner in self.conditioners.items():
            conditioner.name = name
            conditioner.bind(int(backbone.embedding_dim))
        self.register_load_state_dict_pre_hook(_upgrade_legacy_state)

    def forward(self, x: Tensor, t: Tensor, **values: Tensor) -> Tensor:
        """Predict from ``x`` at time steps ``t`` given every conditioner's ``values`` (null
        values where a condition is absent: see :meth:`Conditioner.null_value`)."""
        missing = sorted(set(self.conditioners) - set(values))
        unknown = sorted(set(values) - set(self.conditioners))
        if missing or unknown:
            raise ValueError(f"conditions {sorted(values)} do not match this net's conditioners "
                             f"{sorted(self.conditioners)} (missing {missing}, unknown {unknown})")
        vector, concat, context = once_per_run(self, tuple(values[name] for name in self.conditioners),
                                               lambda: self.condition(values))
        return self.backbone(x, t, vector=vector, concat=concat, context=context)

    def condition(self, values: Mapping[str, Tensor]) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """What the backbone consumes from the conditioners' ``values``: the summed vector, the
        concatenated channels and the concatenated token context (each None when no conditioner
        gives one). The same at every step of a sampling run, so computed once per run there
        (:mod:`diffusionkit.nets.step_cache`)."""
        parts: dict[str, list[Tensor]] = {VECTOR: [], CONCAT: [], SEQUENCE: []}
        for name, conditioner in self.conditioners.items():
            parts[conditioner.kind].append(conditioner(values[name]))
            summary = conditioner.pooled(values[name])
            if summary is not None:
                parts[VECTOR].append(summary)
        vector = None
        for v in parts[VECTOR]:
            vector = v if vector is None else vector + v
        concat = torch.cat(parts[CONCAT], dim=1) if parts[CONCAT] else None
        context = torch.cat(parts[SEQUENCE], dim=1) if parts[SEQUENCE] else None
        return vector, concat, context


def upgrade_legacy_names(state: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A state dict with the names of a net written before conditioners were parts (its weights
    under ``prefix`` without ``backbone.``/``conditioners.``) renamed to today's; a current
    one is returned as it is. Only the names change, so samples stay the same."""
    own = [k for k in state if k.startswith(prefix)]
    if not own or any(k[len(prefix):].startswith(("backbone.", "conditioners.")) for k in own):
        return dict(state)
    renamed = {}
    for key, value in state.items():
        if key.startswith(prefix):
            rest = key[len(prefix):]
            key = prefix + LEGACY_NAMES.get(rest, "backbone." + rest)
        renamed[key] = value
    return renamed


def _upgrade_legacy_state(module: nn.Module, state: dict[str, Any], prefix: str, *args: Any) -> None:
    upgraded = upgrade_legacy_names(state, prefix)
    if upgraded.keys() != state.keys():
        state.clear()
        state.update(upgraded)
