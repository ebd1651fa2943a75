"""The words of shape captions, shared by the dataset that writes them and the modality that measures them.

A caption reads ``a [size] [colour] <shape> [top|bottom] [left|right]``, e.g. "a small red circle top
left". Positions are fractions of the image, ``x`` from the left and ``y`` from the top (0..1).
Kept free of torch, so that importing it stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: the ``named`` palette: well-separated fill colours (RGB 0..255, before jitter), drawn on a dark background.
NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 40, 40),
    "green": (40, 200, 60),
    "blue": (40, 80, 235),
    "yellow": (235, 215, 40),
    "white": (235, 235, 235),
    "magenta": (215, 50, 215),
}
#: the generated shapes (:data:`diffusionkit_image.datasets.SHAPES`, the dataset's classes), named in captions
SHAPE_NAMES = ("circle", "square", "triangle", "cross")
#: the words of the ``contrast`` palette (a shape darker or lighter than its background) and of 1-channel images.
DARK, LIGHT = "dark", "light"
SMALL, LARGE = "small", "large"


def horizontal_word(x: float) -> str:
    """``"left"`` for a centre left of the middle (``x < 0.5``), else ``"right"``."""
    return "left" if x < 0.5 else "right"


def vertical_word(y: float) -> str:
    """``"top"`` for a centre above the middle (``y < 0.5``, y grows downwards), else ``"bottom"``."""
    return "top" if y < 0.5 else "bottom"


def size_word(fraction: float) -> str:
    """``"small"`` in the lower third of ``[0, 1]`` (a size's place in its range), ``"large"`` in the
    upper third, ``""`` (no word) in between."""
    if fraction < 1 / 3:
        return SMALL
    return LARGE if fraction > 2 / 3 else ""


def nearest_colour(rgb: Sequence[float]) -> str:
    """The name of the :data:`NAMED_COLOURS` entry closest to ``rgb`` (0..255, Euclidean)."""
    names = list(NAMED_COLOURS)
    distances = np.linalg.norm(np.asarray([NAMED_COLOURS[n] for n in names], float) - np.asarray(rgb, float), axis=1)
    return names[int(np.argmin(distances))]


def sentence(words: Sequence[str]) -> str:
    """``words`` (empty ones skipped) after the article ``a``, or ``an`` before a vowel."""
    kept = [w for w in words if w]
    article = "an" if kept and kept[0][0] in "aeiou" else "a"
    return " ".join([article, *kept])
