"""Built-in, offline image datasets yielding ``{"x": Tensor[C, H, W] in [-1, 1], "label": int}``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from sklearn.datasets import load_digits
from torch.utils.data import Dataset

from .pixels import as_hw, image_to_array, to_model

_SUPERSAMPLE = 4


def _check_channels(owner: str, channels: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"{owner}: channels must be 1 (grey) or 3 (RGB), got {channels}")


class DigitsDataset(Dataset):
    """scikit-learn's bundled handwritten digits (1797 real 8x8 scans), upscaled.

    Args:
        size: output size, an int or ``[height, width]`` (bilinear, antialiased).
        channels: 1, or 3 to repeat the grey channel.
    """

    def __init__(self, size: int | Sequence[int] = 32, channels: int = 1) -> None:
        _check_channels("DigitsDataset", channels)
        images, labels = load_digits(return_X_y=True)
        small = torch.from_numpy(images.reshape(-1, 1, 8, 8) / 16.0).float()
        large = F.interpolate(small, size=as_hw(size), mode="bilinear", antialias=True, align_corners=False)
        self.images = large.clamp(0.0, 1.0).mul(2.0).sub(1.0)
        self.labels = torch.from_numpy(labels).long()
        self.channels = channels
        self.classes = [str(d) for d in range(10)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"x": self.images[index].repeat(self.channels, 1, 1), "label": int(self.labels[index])}


def _polygon(vertices: int | list[tuple[float, float]]) -> np.ndarray:
    """Unit template ``[N, 2]``: a regular ``vertices``-gon, or the given points; max radius 1."""
    if isinstance(vertices, int):
        angles = np.linspace(0.0, 2.0 * np.pi, vertices, endpoint=False) - np.pi / 2
        points = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    else:
        points = np.asarray(vertices, dtype=np.float64)
    return points / np.linalg.norm(points, axis=1).max()


_ARM = 0.25  # half-width of a cross's arm, relative to its reach
#: name -> (unit polygon, rotational symmetry period in radians)
SHAPES: dict[str, tuple[np.ndarray, float]] = {
    "circle": (_polygon(96), 0.0),
    "square": (_polygon(4), np.pi / 2),
    "triangle": (_polygon(3), 2 * np.pi / 3),
    "cross": (_polygon([(-_ARM, -1), (_ARM, -1), (_ARM, -_ARM), (1, -_ARM), (1, _ARM), (_ARM, _ARM),
                        (_ARM, 1), (-_ARM, 1), (-_ARM, _ARM), (-1, _ARM), (-1, -_ARM), (-_ARM, -_ARM)]),
              np.pi / 2),
}


class ShapesDataset(Dataset):
    """Generated filled shapes on a plain, contrasting background; balanced classes.

    Item ``i`` depends only on ``(seed, i)``: a random colour pair (one dark, one light),
    radius (18-40 % of the shorter side), position (fully inside) and rotation, drawn at 4x
    with Pillow and box-downsampled for anti-aliasing. ``label = i % len(classes)``.

    Args:
        num_samples: dataset length.
        size: an int or ``[height, width]``.
        channels: 3 (RGB) or 1 (luminance).
        seed: non-negative; different seeds give different images.
    """

    def __init__(self, num_samples: int = 5000, size: int | Sequence[int] = 32, channels: int = 3,
                 seed: int = 0) -> None:
        _check_channels("ShapesDataset", channels)
        if num_samples < 1 or seed < 0:
            raise ValueError(f"ShapesDataset: need num_samples >= 1 and seed >= 0, got {num_samples}, {seed}")
        self.num_samples, self.hw, self.channels, self.seed = num_samples, as_hw(size), channels, seed
        self.classes = list(SHAPES)

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict:
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"ShapesDataset index {index} out of range for length {self.num_samples}")
        index %= self.num_samples
        label = index % len(self.classes)
        img = self._draw(self.classes[label], np.random.default_rng((self.seed, index)))
        return {"x": to_model(image_to_array(img, self.channels)), "label": label}

    def _draw(self, shape: str, rng: np.random.Generator) -> Image.Image:
        """Draw one shape at 4x and downsample it to :attr:`hw`."""
        height, width = (s * _SUPERSAMPLE for s in self.hw)
        dark, light = (tuple(int(v) for v in rng.integers(lo, lo + 90, 3)) for lo in (0, 166))
        background, fill = (dark, light) if rng.random() < 0.5 else (light, dark)
        template, period = SHAPES[shape]
        radius = rng.uniform(0.18, 0.40) * min(height, width)
        centre = rng.uniform((radius, radius), (width - radius, height - radius))
        angle = rng.uniform(0.0, period)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = template @ rotation.T * radius + centre
        canvas = Image.new("RGB", (width, height), background)
        ImageDraw.Draw(canvas).polygon([tuple(p) for p in points], fill=fill)
        return canvas.reduce(_SUPERSAMPLE)
