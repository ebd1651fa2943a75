"""Built-in, offline image datasets yielding ``{"x": Tensor[C, H, W] in [-1, 1], "label": int}``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from .captions import DARK, LIGHT, NAMED_COLOURS, horizontal_word, sentence, size_word, vertical_word
from .pixels import as_hw, image_to_array, to_model

_SUPERSAMPLE = 4


def _check_channels(owner: str, channels: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"{owner}: channels must be 1 (grey) or 3 (RGB), got {channels}")


class DigitsDataset(Dataset):
    """scikit-learn's bundled handwritten digits (1797 real 8x8 scans), upscaled; captioned
    "a handwritten 3".

    Args:
        size: output size, an int or ``[height, width]`` (bilinear, antialiased).
        channels: 1, or 3 to repeat the grey channel.
    """

    #: the items are made, not read from files a config names, so a bundle's own config of this
    #: data may be built again (``evaluate`` and ``recognizer`` without ``data=``)
    reads_files = False

    def __init__(self, size: int | Sequence[int] = 32, channels: int = 1) -> None:
        _check_channels("DigitsDataset", channels)
        from sklearn.datasets import load_digits  # here: importing scikit-learn costs a sampling command 1.3 s

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
        label = int(self.labels[index])
        return {"x": self.images[index].repeat(self.channels, 1, 1), "label": label,
                "caption": f"a handwritten {label}"}


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


_RADIUS = (0.18, 0.40)  # a shape's radius range, as a fraction of the shorter side
_JITTER = 20  # a named colour's jitter, +- per RGB channel
_CAPTION_STREAM = 1  # the caption words' own random stream: drawing them leaves ``x`` unchanged
#: fill and background colours: ``contrast`` (a random dark/light pair) or ``named`` (a named colour on dark)
PALETTES = ("contrast", "named")
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class ShapeParams:
    """One item's generation parameters; lengths are in pixels of the 4x canvas."""

    shape: str
    fill: RGB
    background: RGB
    colour: str  # the fill's word: a named colour, or "light"/"dark" for the contrast palette
    size: float  # the radius's place in its range, 0 (smallest) to 1 (largest)
    radius: float
    centre: np.ndarray  # (x, y)
    angle: float


def _contrast_colours(rng: np.random.Generator) -> tuple[RGB, RGB, str]:
    """A random dark and light colour, either one the fill: ``(fill, background, word)``."""
    dark, light = (tuple(int(v) for v in rng.integers(lo, lo + 90, 3)) for lo in (0, 166))
    return (light, dark, LIGHT) if rng.random() < 0.5 else (dark, light, DARK)


def _named_colours(rng: np.random.Generator) -> tuple[RGB, RGB, str]:
    """A jittered named colour on a near-black to dark grey background: ``(fill, background, word)``."""
    word = list(NAMED_COLOURS)[rng.integers(len(NAMED_COLOURS))]
    fill = np.clip(np.asarray(NAMED_COLOURS[word]) + rng.integers(-_JITTER, _JITTER + 1, 3), 0, 255)
    background = rng.integers(0, 36) + rng.integers(0, 12, 3)
    return tuple(int(v) for v in fill), tuple(int(v) for v in background), word


_COLOURS = {"contrast": _contrast_colours, "named": _named_colours}


class ShapesDataset(Dataset):
    """Generated filled shapes on a plain, contrasting background; balanced classes; captioned.

    Item ``i`` depends only on ``(seed, i)``: its colours (see ``palette``), radius (18-40 % of
    the shorter side), position (fully inside) and rotation, drawn at 4x with Pillow and
    box-downsampled for anti-aliasing. ``label = i % len(classes)``.

    Each item also has a ``"caption"`` made from those parameters, ``a [size] [colour] <shape>
    [top|bottom] [left|right]`` (e.g. "a small red circle top left"): size ``small``/``large``
    for the lower/upper third of the radius range (no word in between), the colour word, and the
    shape centre's quadrant. Each word but the shape is kept with probability ``caption_keep``,
    from a random stream of its own (the image does not depend on it).

    Args:
        num_samples: dataset length.
        size: an int or ``[height, width]``.
        channels: 3 (RGB) or 1 (luminance).
        seed: non-negative; different seeds give different images.
        palette: ``contrast``: a random dark/light pair, either one the shape (colour word
            ``dark``/``light``); ``named``: one of :data:`NAMED_COLOURS` (slightly jittered) on a
            near-black background, 3 channels only.
        caption_keep: the probability that a caption keeps each of its optional words.
    """

    #: the items are made, not read from files a config names, so a bundle's own config of this
    #: data may be built again (``evaluate`` and ``recognizer`` without ``data=``)
    reads_files = False

    def __init__(self, num_samples: int = 5000, size: int | Sequence[int] = 32, channels: int = 3,
                 seed: int = 0, palette: str = "contrast", caption_keep: float = 0.8) -> None:
        _check_channels("ShapesDataset", channels)
        if num_samples < 1 or seed < 0:
            raise ValueError(f"ShapesDataset: need num_samples >= 1 and seed >= 0, got {num_samples}, {seed}")
        if palette not in PALETTES or (palette == "named" and channels != 3):
            raise ValueError(f"ShapesDataset: palette must be one of {PALETTES} ('named' needs channels=3), "
                             f"got {palette!r} with channels={channels}")
        if not 0.0 <= caption_keep <= 1.0:
            raise ValueError(f"ShapesDataset: caption_keep must lie in [0, 1], got {caption_keep}")
        self.num_samples, self.hw, self.channels, self.seed = num_samples, as_hw(size), channels, seed
        self.palette, self.caption_keep = palette, float(caption_keep)
        self.classes = list(SHAPES)

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict:
        index = self._index(index)
        params = self.params(index)
        x = to_model(image_to_array(_draw(params, self.hw), self.channels))
        return {"x": x, "label": index % len(self.classes), "caption": self._caption(params, index)}

    def caption(self, index: int) -> str:
        """Item ``index``'s caption, without drawing it."""
        index = self._index(index)
        return self._caption(self.params(index), index)

    @cached_property
    def captions(self) -> list[str]:
        """Every item's caption, in order."""
        return [self.caption(i) for i in range(self.num_samples)]

    def params(self, index: int) -> ShapeParams:
        """Item ``index``'s generation parameters (``index`` in ``0..len - 1``)."""
        rng = np.random.default_rng((self.seed, index))
        shape = self.classes[index % len(self.classes)]
        fill, background, colour = _COLOURS[self.palette](rng)
        height, width = (s * _SUPERSAMPLE for s in self.hw)
        low, high = _RADIUS
        fraction = rng.uniform(low, high)
        radius = fraction * min(height, width)
        centre = rng.uniform((radius, radius), (width - radius, height - radius))
        angle = rng.uniform(0.0, SHAPES[shape][1])
        return ShapeParams(shape, fill, background, colour, (fraction - low) / (high - low), radius, centre, angle)

    def _index(self, index: int) -> int:
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"ShapesDataset index {index} out of range for length {self.num_samples}")
        return index % self.num_samples

    def _caption(self, params: ShapeParams, index: int) -> str:
        """The caption of item ``index``: each optional word kept with probability :attr:`caption_keep`."""
        x, y = (params.centre + 0.5) / (np.array(self.hw[::-1]) * _SUPERSAMPLE)  # pixel centres, as measured
        words = [size_word(params.size), params.colour, vertical_word(y), horizontal_word(x)]
        keep = np.random.default_rng((self.seed, index, _CAPTION_STREAM)).random(len(words)) < self.caption_keep
        size, colour, vertical, horizontal = (word if kept else "" for word, kept in zip(words, keep))
        return sentence([size, colour, params.shape, vertical, horizontal])


def _draw(params: ShapeParams, hw: tuple[int, int]) -> Image.Image:
    """Draw one shape at 4x and downsample it to ``hw``."""
    height, width = (s * _SUPERSAMPLE for s in hw)
    angle = params.angle
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = SHAPES[params.shape][0] @ rotation.T * params.radius + params.centre
    canvas = Image.new("RGB", (width, height), params.background)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in points], fill=params.fill)
    return canvas.reduce(_SUPERSAMPLE)
