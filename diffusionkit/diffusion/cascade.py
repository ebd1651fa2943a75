"""Cascaded diffusion (Ho et al. 2022, "Cascaded Diffusion Models for High Fidelity Image
Generation"; Saharia et al. 2022, Imagen): a base model samples at a low resolution, then each
super-resolution stage samples at a higher one, conditioned on the previous stage's output
through its :class:`~diffusionkit.nets.low_resolution.LowResolution` condition.

A :class:`Cascade` samples like one :class:`~diffusionkit.diffusion.model.DiffusionModel`:
every tensor argument is at the last stage's resolution, and each stage gets its version of it
(degraded as that stage's successor was trained to undo), so edits (``init``/``strength``,
``known``/``mask``) work through a cascade: the base edits the coarse item, each upsampler the
finer one, conditioned on what the stage before made.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from diffusionkit.diffusion.model import DiffusionModel
from diffusionkit.errors import UsageError
from diffusionkit.nets.conditioners import LABEL, Conditioner
from diffusionkit.nets.low_resolution import LowResolution


def low_resolution_condition(model: DiffusionModel) -> str | None:
    """The name of a model's low-resolution condition (a super-resolution stage's), or None."""
    names = [name for name, c in model.conditioners.items() if isinstance(c, LowResolution)]
    if len(names) > 1:
        raise ValueError(f"a model has one low-resolution condition at most, got {names}")
    return names[0] if names else None


class Cascade(nn.Module):
    """A base model followed by super-resolution stages (see the module docstring).

    Each stage after the first must have a low-resolution condition whose factors take the
    previous stage's item shape to its own; class-conditional stages share the base's classes
    (checked by whoever loads them: :func:`diffusionkit.bundle.load_model`).
    """

    def __init__(self, stages: Sequence[DiffusionModel]) -> None:
        super().__init__()
        if len(stages) < 2:
            raise ValueError(f"a cascade needs a base and at least one upsampler, got {len(stages)} model(s)")
        if low_resolution_condition(stages[0]) is not None:
            raise ValueError("the first stage of a cascade is an upsampler; put the base model first")
        self.stages = nn.ModuleList(stages)
        self.links: list[str] = []
        for i, (low, high) in enumerate(zip(stages, stages[1:]), start=1):
            name = low_resolution_condition(high)
            if name is None:
                raise ValueError(f"stage {i + 1} of the cascade is no super-resolution stage: it has no "
                                 f"low-resolution condition (train it with stage=upsampler)")
            factors = high.conditioners[name].factors(len(high.data_shape) - 1)
            expected = tuple(s // f for s, f in zip(high.data_shape[1:], factors))
            if tuple(low.data_shape) != (high.data_shape[0], *expected):
                raise ValueError(f"stage {i + 1} upsamples {[high.data_shape[0], *expected]} items by "
                                 f"{list(factors)}, but stage {i} makes {list(low.data_shape)}")
            self.links.append(name)

    @property
    def base(self) -> DiffusionModel:
        return self.stages[0]  # type: ignore[return-value]

    @property
    def conditioners(self) -> Mapping[str, Conditioner]:
        """The conditions a command can give: the base's (a later stage takes those it shares)."""
        return self.base.conditioners

    @property
    def num_classes(self) -> int:
        return self.base.num_classes

    @property
    def device(self) -> torch.device:
        return self.base.device

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.stages[-1].data_shape)

    def guided_conditions(self, labels: Tensor | None, conditions: Mapping[str, Tensor] | None,
                          guide: Collection[str] | None = None) -> list[str]:
        return self.base.guided_conditions(labels, conditions, guide)

    def at_stage(self, x: Tensor | None, stage: int) -> Tensor | None:
        """A last-stage item batch as ``stage`` sees it: degraded by every later stage's condition."""
        if x is None:
            return None
        for index in range(len(self.stages) - 1, stage, -1):
            condition: LowResolution = self.stages[index].conditioners[self.links[index - 1]]  # type: ignore[assignment]
            x = condition.degrade(x, condition.factors(x.dim() - 2))
        return x

    def infer_labels(self, x0: Tensor, **kwargs: Any) -> Tensor | None:
        """The base's classes of items given at the last stage's resolution."""
        return self.base.infer_labels(self.at_stage(x0, 0), **kwargs)  # type: ignore[arg-type]

    def invert(self, *args: Any, **kwargs: Any) -> Tensor:
        raise UsageError("inverting to noise (interpolate, convert method=invert) runs on one model, not a cascade: "
                         "pass ckpt=<one bundle>")

    def sample(self, n: int, labels: Tensor | None = None, *, conditions: Mapping[str, Tensor] | None = None,
               guide: Collection[str] | None = None, negatives: Mapping[str, Tensor] | None = None,
               init: Tensor | None = None, known: Tensor | None = None, mask: Tensor | None = None,
               noise: Tensor | None = None, generator: torch.Generator | None = None, **settings: Any) -> Tensor:
        """``n`` items at the last stage's resolution (arguments as :meth:`DiffusionModel.sample`;
        ``noise`` from an inversion belongs to one model and is refused)."""
        if noise is not None:
            raise ValueError("a cascade cannot start from inverted noise (it belongs to one stage); "
                             "run the inversion on one model")
        out: Tensor | None = None
        for index, stage in enumerate(self.stages):
            own = {k: v for k, v in (conditions or {}).items() if k in stage.conditioners}
            if index > 0:
                condition: LowResolution = stage.conditioners[self.links[index - 1]]  # type: ignore[assignment]
                own[self.links[index - 1]] = condition.from_low_resolution(out, stage.data_shape[1:], generator)
            stage_mask = self.at_stage(mask, index)
            out = stage.sample(
                n, labels if LABEL in stage.conditioners else None, conditions=own,
                guide=None if guide is None else [g for g in guide if g in stage.conditioners],
                negatives={k: v for k, v in (negatives or {}).items() if k in stage.conditioners} or None,
                init=self.at_stage(init, index), known=self.at_stage(known, index),
                mask=None if stage_mask is None else (stage_mask > 0.5).to(stage_mask.dtype),
                generator=generator, **settings,
            ).float()
        assert out is not None
        return out
