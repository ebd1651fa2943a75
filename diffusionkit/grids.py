"""Equally sized pictures (or clips of them) laid out as one grid: the layout of torchvision's
``make_grid`` (rows of ``columns`` items, gutters of ``fill`` around and between them, one item
returned as it is) on uint8 arrays, without importing torchvision (1.7 s of a command's start).
Plugins render their batches with it: pictures ``[B, H, W, C]``, clips ``[B, T, H, W, C]``."""

from __future__ import annotations

import math

import numpy as np


def near_square_columns(count: int) -> int:
    """The columns of a near-square grid of ``count`` items (``ceil(sqrt(count))``)."""
    return max(1, math.ceil(math.sqrt(count)))


def tile(items: np.ndarray, columns: int | None = None, gutter: int = 2, fill: int = 255) -> np.ndarray:
    """``items [B, *lead, H, W, C]`` as one grid ``[*lead, GH, GW, C]``: ``columns`` items a row
    (default :func:`near_square_columns`; never more than ``B``), ``gutter`` pixels of ``fill``
    around and between them. Every leading axis (a clip's frames) is tiled alike. A single item
    comes back as it is, without gutters."""
    items = np.asarray(items)
    if items.ndim < 4 or items.shape[0] == 0:
        raise ValueError(f"tile: expected a non-empty batch [B, ..., H, W, C], got shape {items.shape}")
    if items.shape[0] == 1:
        return items[0].copy()
    count, (height, width, depth) = items.shape[0], items.shape[-3:]
    columns = min(columns or near_square_columns(count), count)
    rows = math.ceil(count / columns)
    grid = np.full((*items.shape[1:-3], rows * (height + gutter) + gutter, columns * (width + gutter) + gutter, depth),
                   fill, items.dtype)
    for index, item in enumerate(items):
        row, column = divmod(index, columns)
        top, left = gutter + row * (height + gutter), gutter + column * (width + gutter)
        grid[..., top:top + height, left:left + width, :] = item
    return grid
