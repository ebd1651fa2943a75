"""Generated, offline video datasets yielding ``{"x": Tensor[C, T, H, W] in [-1, 1], "label": int, "caption": str}``.

Both render every clip up front (eagerly) and keep them as uint8. Item ``i`` has label
``i % len(classes)`` and its own generator ``np.random.default_rng([seed, i])``, so it depends
only on ``(seed, i)`` (and the clip geometry), not on ``per_class``.

Motion: an object starts at a random place inside the frame with a random velocity and bounces
off the borders (perfect reflection, computed in closed form), so it always stays whole inside
the frame. Frames are drawn at 4x and box-downsampled, which anti-aliases the edges and makes
sub-pixel motion visible.

Captions name the object and its net motion from the first to the last frame (see
:func:`motion_phrase`), e.g. "a red circle moving up left" or "digit 3 moving down".
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torch.utils.data import Dataset

from .modality import as_hw

_SUPERSAMPLE = 4


def bounce(start: float, velocity: float, low: float, high: float, steps: int) -> np.ndarray:
    """Positions ``[steps]`` of a point moving at ``velocity`` per step from ``start`` and reflected
    at ``low`` and ``high`` (a triangle wave); a zero-width range keeps it at ``low``."""
    span = high - low
    if span <= 0:
        return np.full(steps, low, dtype=np.float64)
    phase = np.mod(start - low + velocity * np.arange(steps), 2 * span)
    return low + np.where(phase <= span, phase, 2 * span - phase)


_MIN_SHIFT = 0.1  # a net shift below this fraction of the shorter side names no direction
#: the hue names of coloured sprites, at hues 0, 1/6, 2/6, ... (each covers the sixth of the hue circle around it)
HUE_NAMES = ("red", "yellow", "green", "cyan", "blue", "magenta")


def motion_phrase(xs: np.ndarray, ys: np.ndarray, side: float) -> str:
    """How a path (positions per frame, y down) moved from its first to its last frame, in words:
    ``moving`` and ``up``/``down``, ``left``/``right`` for each axis whose shift is at least half
    the larger one ("moving up left"); ``moving back and forth`` when both shifts are under 10 % of
    ``side``; ``""`` for a single frame."""
    if len(xs) < 2:
        return ""
    dx, dy = xs[-1] - xs[0], ys[-1] - ys[0]
    largest = max(abs(dx), abs(dy))
    if largest < _MIN_SHIFT * side:
        return "moving back and forth"
    vertical = ("up" if dy < 0 else "down") if abs(dy) >= largest / 2 else ""
    horizontal = ("left" if dx < 0 else "right") if abs(dx) >= largest / 2 else ""
    return words("moving", vertical, horizontal)


def words(*parts: str) -> str:
    """The non-empty ``parts`` joined by spaces."""
    return " ".join(part for part in parts if part)


def hue_name(hue: float) -> str:
    """The :data:`HUE_NAMES` entry nearest to ``hue`` (0..1, a full turn)."""
    return HUE_NAMES[int(hue * len(HUE_NAMES) + 0.5) % len(HUE_NAMES)]


class GeneratedVideoDataset(Dataset):
    """Base class: renders ``per_class * len(classes)`` clips eagerly.

    Subclasses set ``classes`` and implement :meth:`render`, which also captions the clip; items
    carry it as ``"caption"``, and :attr:`captions` lists them all.

    Args:
        frames: frames per clip.
        size: an int or ``[height, width]``.
        channels: 1 (grey) or 3 (RGB).
        per_class: clips per class.
        seed: non-negative; different seeds give different clips.
    """

    #: the items are made, not read from files a config names, so a bundle's own config of this
    #: data may be built again (``evaluate`` and ``recognizer`` without ``data=``)
    reads_files = False

    classes: list[str]

    def __init__(self, frames: int, size: int | Sequence[int], channels: int, per_class: int, seed: int) -> None:
        name = type(self).__name__
        if channels not in (1, 3):
            raise ValueError(f"{name}: channels must be 1 (grey) or 3 (RGB), got {channels}")
        if frames < 1 or per_class < 1 or seed < 0:
            raise ValueError(f"{name}: need frames >= 1, per_class >= 1 and seed >= 0, "
                             f"got {frames}, {per_class}, {seed}")
        self.classes = list(self.classes)
        self.frames, self.hw, self.channels = int(frames), as_hw(size), int(channels)
        self.per_class, self.seed = int(per_class), int(seed)
        count = self.per_class * len(self.classes)
        self.labels = [i % len(self.classes) for i in range(count)]
        rendered = [self.render(label, np.random.default_rng([self.seed, i])) for i, label in enumerate(self.labels)]
        clips = np.stack([clip for clip, _ in rendered])
        #: one caption per clip, in order
        self.captions: list[str] = [caption for _, caption in rendered]
        expected = (count, self.frames, *self.hw, self.channels)
        if clips.shape != expected or clips.dtype != np.uint8:
            raise ValueError(f"{name}: rendered {clips.dtype} {clips.shape}, expected uint8 {expected}")
        #: uint8 ``[N, C, T, H, W]``; items are converted to [-1, 1] when indexed.
        self.clips = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).contiguous()

    def render(self, label: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """One uint8 clip ``[frames, H, W, channels]`` of class ``label`` and its caption, randomness
        only from ``rng``."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{type(self).__name__} index {index} out of range for length {len(self)}")
        index %= len(self)
        return {"x": self.clip(index), "label": self.labels[index], "caption": self.captions[index]}

    def caption(self, index: int) -> str:
        """Item ``index``'s caption."""
        return self.captions[index]

    def clip(self, index: int) -> Tensor:
        """Item ``index`` as float32 ``[C, T, H, W]`` in [-1, 1]."""
        return self.clips[index].float().div(127.5).sub(1.0)


def _polygon(vertices: int | list[tuple[float, float]]) -> np.ndarray:
    """Unit template ``[N, 2]``: a regular ``vertices``-gon (a vertex up), or the given points; max radius 1."""
    if isinstance(vertices, int):
        angles = np.linspace(0.0, 2.0 * np.pi, vertices, endpoint=False) - np.pi / 2
        points = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    else:
        points = np.asarray(vertices, dtype=np.float64)
    return points / np.linalg.norm(points, axis=1).max()


_ARM = 0.3  # half-width of a cross's arm relative to its reach: about 2 px wide arms at 32x32
#: sprite class -> unit polygon (max radius 1). Squares and crosses are axis-aligned, triangles
#: point up; each clip adds a small random tilt.
SPRITES: dict[str, np.ndarray] = {
    "circle": _polygon(64),
    "square": _polygon([(-1, -1), (1, -1), (1, 1), (-1, 1)]),
    "triangle": _polygon(3),
    "cross": _polygon([(-_ARM, -1), (_ARM, -1), (_ARM, -_ARM), (1, -_ARM), (1, _ARM), (_ARM, _ARM),
                       (_ARM, 1), (-_ARM, 1), (-_ARM, _ARM), (-1, _ARM), (-1, -_ARM), (-_ARM, -_ARM)]),
}


class SpritesDataset(GeneratedVideoDataset):
    """A single filled shape per clip (``circle``, ``square``, ``triangle``, ``cross``: the label)
    moving in a straight line and bouncing off the borders, on a dark background.

    Per clip: radius 20-30 % of the shorter side, tilt within +-15 degrees, speed 2.5-6 % of the
    shorter side per frame (0.8-1.9 px at 32x32) in a random direction, random start inside the
    frame; the shape is a bright colour (``channels=3``: random hue, saturation 0.6-1, value
    0.85-1) or light grey (``channels=1``: 190-255) on a dark, near-black background (0-40).
    Captions: "a circle moving left", with the hue's name for ``channels=3`` ("a blue circle moving left").
    """

    classes = list(SPRITES)

    def __init__(self, frames: int = 16, size: int | Sequence[int] = 32, channels: int = 3, per_class: int = 200,
                 seed: int = 0) -> None:
        super().__init__(frames, size, channels, per_class, seed)

    def render(self, label: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        height, width = self.hw
        side = min(height, width)
        radius = rng.uniform(0.20, 0.30) * side
        tilt = np.deg2rad(rng.uniform(-15.0, 15.0))
        speed, direction = rng.uniform(0.025, 0.06) * side, rng.uniform(0.0, 2 * np.pi)
        xs = bounce(rng.uniform(radius, width - radius), speed * np.cos(direction), radius, width - radius, self.frames)
        ys = bounce(rng.uniform(radius, height - radius), speed * np.sin(direction), radius, height - radius,
                    self.frames)
        if self.channels == 3:
            hue, saturation, value = rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.85, 1.0)
            fill = tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(hue, saturation, value))
            background = tuple(int(v) for v in rng.integers(0, 41, 3))
            mode, colour = "RGB", hue_name(hue)
        else:
            fill, background, mode = int(rng.integers(190, 256)), int(rng.integers(0, 41)), "L"
            colour = ""
        rotation = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
        template = SPRITES[self.classes[label]] @ rotation.T * radius * _SUPERSAMPLE
        frames = []
        for x, y in zip(xs, ys):
            canvas = Image.new(mode, (width * _SUPERSAMPLE, height * _SUPERSAMPLE), background)
            points = template + np.array([x, y]) * _SUPERSAMPLE
            ImageDraw.Draw(canvas).polygon([tuple(p) for p in points], fill=fill)
            frames.append(np.asarray(canvas.reduce(_SUPERSAMPLE), dtype=np.uint8).reshape(height, width, -1))
        return np.stack(frames), words("a", colour, self.classes[label], motion_phrase(xs, ys, side))


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: float ``[1797, 8, 8]`` in [0, 1] and their labels."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    return (images.reshape(-1, 8, 8) / 16.0).astype(np.float32), labels.astype(np.int64)


class MovingDigitsDataset(GeneratedVideoDataset):
    """Real handwritten digits (scikit-learn's 1797 8x8 scans, upscaled to ``digit_fraction`` of
    the shorter side: 14 px at 32x32) moving and bouncing, white on black, like Moving MNIST
    with one digit; the digit is the label. Each clip picks a random scan of its class and a
    speed of 2.5-6 % of the shorter side per frame in a random direction. ``channels=3``
    repeats the grey channel. Captions: "digit 3 moving up".
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, frames: int = 16, size: int | Sequence[int] = 32, channels: int = 1, per_class: int = 100,
                 seed: int = 0, digit_fraction: float = 14 / 32) -> None:
        self.digit_fraction = float(digit_fraction)
        images, labels = _digits()
        self._images, self._by_class = images, [np.flatnonzero(labels == d) for d in range(10)]
        super().__init__(frames, size, channels, per_class, seed)

    def render(self, label: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        height, width = self.hw
        side = min(height, width)
        digit = max(8, min(side, round(self.digit_fraction * side)))
        scan = self._images[rng.choice(self._by_class[label])]
        big = digit * _SUPERSAMPLE
        scan_image = Image.fromarray((scan * 255.0).astype(np.float32))  # mode "F"
        sprite = np.asarray(scan_image.resize((big, big), Image.Resampling.BICUBIC)).clip(0, 255)
        speed, direction = rng.uniform(0.025, 0.06) * side, rng.uniform(0.0, 2 * np.pi)
        lefts = bounce(rng.uniform(0, width - digit), speed * np.cos(direction), 0, width - digit, self.frames)
        tops = bounce(rng.uniform(0, height - digit), speed * np.sin(direction), 0, height - digit, self.frames)
        canvas = np.zeros((self.frames, height * _SUPERSAMPLE, width * _SUPERSAMPLE), dtype=np.float32)
        for t, (left, top) in enumerate(zip(lefts, tops)):
            row, col = int(round(top * _SUPERSAMPLE)), int(round(left * _SUPERSAMPLE))
            canvas[t, row:row + big, col:col + big] = sprite
        small = canvas.reshape(self.frames, height, _SUPERSAMPLE, width, _SUPERSAMPLE).mean(axis=(2, 4))
        frames = np.round(small).clip(0, 255).astype(np.uint8)
        caption = words("digit", self.classes[label], motion_phrase(lefts, tops, side))
        return np.repeat(frames[..., None], self.channels, axis=-1), caption
