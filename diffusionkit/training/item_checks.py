"""A few items of a training set, read and checked against the modality before fitting starts, so
that a dataset of the wrong shape (a plugin author's slip) is one line, not a traceback from the
middle of a training step."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any

import torch
from torch.utils.data import Dataset

from diffusionkit.errors import UsageError
from diffusionkit.modality import Modality
from diffusionkit.plugin_calls import plugin_call
from diffusionkit.training.build import num_classes_for


def sample_indices(size: int, count: int = 3) -> list[int]:
    """Up to ``count`` indices spread over ``size`` items: the first, the middle, the last..."""
    return sorted({round(i * (size - 1) / max(1, count - 1)) for i in range(count)}) if size else []


def _label_problem(label: Any, num_classes: int) -> str | None:
    """What is wrong with an item's label (None: nothing); any integer for an unconditional model."""
    if isinstance(label, torch.Tensor) and label.numel() == 1:
        label = label.item()
    if isinstance(label, bool) or not isinstance(label, Integral):
        return f"has label {label!r} of type {type(label).__name__}, not an integer class index"
    if num_classes and not 0 <= int(label) < num_classes:
        return f"has label {label}; the dataset names {num_classes} classes, so a label is 0 to {num_classes - 1}"
    return None


def item_problem(item: Any, modality: Modality, num_classes: int) -> str | None:
    """What is wrong with one dataset item for a model of ``modality`` (None: nothing)."""
    if not isinstance(item, Mapping) or not {"x", "label"} <= item.keys():
        return f"is a {type(item).__name__} without 'x' and 'label'; a dataset item is {{'x': tensor, 'label': int}}"
    x = item["x"]
    if not isinstance(x, torch.Tensor):
        return f"has 'x' of type {type(x).__name__}, not a tensor"
    if tuple(x.shape) != tuple(modality.shape):
        return (f"has shape {list(x.shape)}; {type(modality).__name__} expects {list(modality.shape)} "
                f"(channels, *spatial)")
    if not torch.isfinite(x).all():
        return "holds NaN or infinite values"
    return _label_problem(item["label"], num_classes)


def check_items(dataset: Dataset, modality: Modality, count: int = 3) -> None:
    """Read ``count`` items of ``dataset`` (spread over it) and refuse in one line, naming the
    dataset, the item and what is wrong, when one does not fit ``modality``'s model space."""
    name = f"dataset {type(dataset).__name__} (data.dataset)"
    num_classes = num_classes_for(list(getattr(dataset, "classes", None) or []))
    with plugin_call(dataset, f"{name}: cannot count its items"):
        size = len(dataset)
    if size == 0:
        raise UsageError(f"{name} has no items: nothing to train on")
    for index in sample_indices(size, count):
        with plugin_call(dataset, f"{name}: cannot read item {index}"):
            item = dataset[index]
        problem = item_problem(item, modality, num_classes)
        if problem:
            raise UsageError(f"{name}: item {index} {problem}")
