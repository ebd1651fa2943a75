"""Spectrogram pictures: dB arrays coloured for PNG files and TensorBoard."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from diffusionkit.grids import tile

#: the white gutter around and between a grid's pictures, in pixels.
GUTTER = 2

#: anchor colours of a dark-to-bright palette (black, purple, red, orange, pale yellow).
_ANCHORS = np.array([[0, 0, 4], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191]], dtype=np.float32)


def colourise(db: np.ndarray, floor_db: float, ceiling_db: float, min_height: int = 128) -> np.ndarray:
    """``[bins, frames]`` dB -> uint8 ``[H, W, 3]`` with low frequencies at the bottom,
    scaled up (nearest) to at least ``min_height`` rows so small spectrograms stay visible."""
    level = np.clip((np.asarray(db, dtype=np.float32) - floor_db) / (ceiling_db - floor_db), 0.0, 1.0)
    position = level * (len(_ANCHORS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (position - low)[..., None]
    rgb = (_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).round().astype(np.uint8)[::-1]
    factor = max(1, math.ceil(min_height / rgb.shape[0]))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def picture_grid(pictures: list[np.ndarray]) -> np.ndarray:
    """A near-square grid of equally sized uint8 ``[H, W, 3]`` pictures, white gutters
    (:func:`diffusionkit.grids.tile`: a single picture is returned as is)."""
    return tile(np.stack([np.asarray(p) for p in pictures]), gutter=GUTTER)


def write_picture(rgb: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path
