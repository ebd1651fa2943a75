"""The toy plugin's modality and dataset under the names the core's tests import."""

from __future__ import annotations

from diffusionkit_toy.datasets import ToyBlobs
from diffusionkit_toy.modality import ToyModality

__all__ = ["GaussianClasses", "ToyModality"]


class GaussianClasses(ToyBlobs):
    """:class:`ToyBlobs` of item shape ``[channels, *spatial]`` and ``n`` items."""

    def __init__(self, shape: tuple[int, ...], num_classes: int = 2, n: int = 64, seed: int = 0) -> None:
        super().__init__(shape[0], shape[1:], num_classes, n, seed)
