"""A bundle's recogniser: the small classifier that names the class of an input (``label=auto``).

A conditional diffusion model can name the class of an input by itself (the diffusion classifier,
:meth:`DiffusionModel.infer_labels`), but on recordings from sources it never heard that guess
is weak (31% of real one-shots from unseen drum kits for the starter). A bundle may therefore
carry a recogniser: the judges' :class:`~diffusionkit.evaluation.Classifier`, trained on the
model's own training data with the modality's augmentations and a class-balanced loss (what
makes a judge hold up on unseen sources). It is stored as plain weights under ``recognizer.*``
with a JSON spec in the metadata, so it is data like the rest of the bundle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset

from diffusionkit.errors import UsageError
from diffusionkit.evaluation import Classifier, fit_classifier, predict

__all__ = ["Classifier", "PREFIX", "fit_recognizer", "load_recognizer", "recognize", "recognizer_entries"]

#: the weights' prefix and the metadata key of a bundle's recogniser.
PREFIX = "recognizer"
#: the widths and grids a stored spec may name (the judges use width 32, grid 4).
WIDTHS, GRIDS = range(4, 257), range(1, 9)


def fit_recognizer(dataset: Dataset, spatial_rank: int, channels: int, num_classes: int, *, epochs: int = 20,
                   width: int = 32, seed: int = 0, augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
                   **fit: Any) -> tuple[Classifier, dict[str, Any]]:
    """A recogniser fitted on every item of ``dataset`` (balanced loss), and its spec."""
    model = fit_classifier(dataset, spatial_rank, channels, num_classes, epochs=epochs, width=width, seed=seed,
                           augment=augment, balanced=True, **fit)
    spec = {"width": width, "grid": 4, "epochs": epochs, "items": len(dataset),
            "augment": sorted(getattr(augment, "chosen", []) or [])}
    return model, spec


def recognizer_entries(model: Classifier, spec: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The weights and metadata that store ``model`` in a bundle."""
    weights = {f"{PREFIX}.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    return weights, {PREFIX: json.dumps(spec)}


def load_recognizer(path: Path, weights: dict[str, Tensor], metadata: dict[str, str], spatial_rank: int,
                    channels: int, num_classes: int) -> Classifier | None:
    """The recogniser a bundle stores (None if it has none); UsageError (one line) when its spec
    or weights are not those of a recogniser of this model."""
    text = metadata.get(PREFIX)
    stored = {k.removeprefix(PREFIX + "."): v for k, v in weights.items() if k.startswith(PREFIX + ".")}
    if text is None and not stored:
        return None
    try:
        spec = json.loads(text or "")
        width, grid = int(spec["width"]), int(spec["grid"])
    except (TypeError, ValueError, KeyError):
        raise UsageError(f"bundle '{path}': its recognizer spec is not readable; remove it or re-add it with "
                         f"diffusionkit recognizer") from None
    if width not in WIDTHS or grid not in GRIDS:
        raise UsageError(f"bundle '{path}': its recognizer asks for width {width}, grid {grid}; allowed: width "
                         f"{WIDTHS.start}-{WIDTHS.stop - 1}, grid {GRIDS.start}-{GRIDS.stop - 1}")
    model = Classifier(spatial_rank, channels, num_classes, width, grid)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in stored.items()}
    if expected != found:
        name = sorted(set(expected.items()) ^ set(found.items()))[0][0]
        raise UsageError(f"weights in '{path}' do not fit its recognizer: {PREFIX}.{name} holds "
                         f"{list(found[name]) if name in found else 'nothing'}, it needs "
                         f"{list(expected[name]) if name in expected else 'nothing'}")
    model.load_state_dict(stored)
    return model.eval()


def recognize(model: Classifier, x: Tensor) -> Tensor:
    """The class index of each item ``[n, C, *spatial]`` (on the CPU)."""
    return predict(model, x.detach().float().cpu())
