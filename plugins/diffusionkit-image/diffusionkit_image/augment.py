"""Image augmentations in model space ([-1, 1] pixels; the core's ``augment=`` applies them).

``flip`` mirrors left to right (it changes what some classes mean: leave it out for digits with
``augment.transforms=[crop,jitter]``), ``crop`` takes a slightly shifted window of the picture
(its edges repeated), ``jitter`` changes brightness and contrast a little.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand((), generator=generator))


def flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Mirrored left to right."""
    return x.flip(-1)


def crop(x: Tensor, generator: torch.Generator, fraction: float = 0.1) -> Tensor:
    """A window of the same size shifted by up to ``fraction`` of each side (edges repeated)."""
    pads = [max(1, round(fraction * size)) for size in x.shape[-2:]]
    padded = F.pad(x.unsqueeze(0), (pads[1], pads[1], pads[0], pads[0]), mode="replicate")[0]
    top, left = (int(torch.randint(0, 2 * p + 1, (), generator=generator)) for p in pads)
    return padded[..., top:top + x.shape[-2], left:left + x.shape[-1]]


def jitter(x: Tensor, generator: torch.Generator, brightness: float = 0.1, contrast: float = 0.1) -> Tensor:
    """Brightness shifted by up to ``brightness`` and contrast scaled by up to ``1 +- contrast``."""
    mean = x.mean()
    scaled = (x - mean) * _uniform(generator, 1 - contrast, 1 + contrast) + mean
    return (scaled + _uniform(generator, -brightness, brightness)).clamp(-1.0, 1.0)


IMAGE_TRANSFORMS: dict[str, Callable[..., Tensor]] = {"flip": flip, "crop": crop, "jitter": jitter}
