"""Data augmentation on the fly, for any modality: the modality supplies the transforms, the
core chooses and applies them.

A modality offers named transforms of one model-space item (:meth:`Modality.augmentations`:
gain, small pitch and time shifts, EQ tilt, noise for sound; flips, crops, colour jitter for
pictures), each ``transform(x, generator, **options) -> x`` with its own default strength. The
``augment`` config chooses which run and how often: each chosen transform is applied to an item
with probability ``p``, in the order the modality lists them, with fresh randomness every time
an item is drawn (as in SpecAugment, Park et al. 2019, and the flips and crops of every image
pipeline). Validation items are never augmented. The resolved choice is in the run's config, so
the recipe records it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch.utils.data import Dataset

from diffusionkit.errors import UsageError
from diffusionkit.modality import Modality

#: one transform of one model-space item ``[C, *spatial]``.
Transform = Callable[..., Tensor]


class Augmenter:
    """The modality's transforms that ``transforms`` names, each applied with probability ``p``.

    Args:
        modality: the run's modality (it supplies the transforms).
        transforms: ``"all"``, ``"none"`` (or None), a list of names, or a mapping of names to
            options (``{gain: {db: 3}, time_shift: {p: 0.8}}``; ``p`` there overrides ``p``).
        p: the chance each transform is applied to an item.
    """

    def __init__(self, modality: Modality, transforms: Any = "all", p: float = 0.5) -> None:
        if not 0.0 <= float(p) <= 1.0:
            raise UsageError(f"augment.p must be between 0 and 1, got {p}")
        offered = dict(modality.augmentations())
        self.chosen = _choose(offered, transforms, float(p), type(modality).__name__)
        self.transforms = {name: offered[name] for name in self.chosen}

    def __bool__(self) -> bool:
        return bool(self.chosen)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        for name, transform in self.transforms.items():
            options = dict(self.chosen[name])
            if float(torch.rand((), generator=generator)) < options.pop("p"):
                x = transform(x, generator, **options)
        return x


def _choose(offered: Mapping[str, Transform], transforms: Any, p: float, owner: str) -> dict[str, dict]:
    """Each chosen transform's options, ``p`` included; UsageError for a name not offered."""
    if transforms in (None, "none"):
        return {}
    if transforms == "all":
        transforms = list(offered)
    if isinstance(transforms, str):
        transforms = [transforms]
    options = {str(k): dict(v or {}) for k, v in transforms.items()} if isinstance(transforms, Mapping) \
        else {str(name): {} for name in transforms}
    unknown = sorted(set(options) - set(offered))
    if unknown:
        names = ", ".join(offered) or "none"
        raise UsageError(f"augment.transforms: {owner} offers no transform '{unknown[0]}'; it offers: {names}")
    return {name: {"p": float(opts.pop("p", p)), **opts} for name, opts in options.items()}


def build_augmenter(config: Any, modality: Modality) -> Augmenter:
    """The run's ``augment`` config (``transforms``, ``p``) as an Augmenter; none for a run
    config without one (written before augmentation existed)."""
    options = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config or {})
    return Augmenter(modality, options.get("transforms", "none"), options.get("p", 0.5))


class AugmentedDataset(Dataset):
    """``dataset`` whose items' ``x`` go through ``augmenter`` each time they are drawn. The
    randomness comes from torch's global generator (seeded per process and worker by the run's
    seed), so a run is repeatable and every epoch sees new variants."""

    def __init__(self, dataset: Dataset, augmenter: Augmenter) -> None:
        self.dataset, self.augmenter = dataset, augmenter

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))
        item["x"] = self.augmenter(item["x"], generator)
        return item
