"""Video frames in memory: numpy arrays, uint8 ``[N, H, W, 3]`` (RGB) unless a function says otherwise.

Converting Pillow images to RGB frames, fitting frames to a size, cutting clips, and laying frames
and clips out side by side for previews. No file is read or written here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from diffusionkit import grids


def rgb_image(img: Image.Image) -> Image.Image:
    """Any Pillow image as RGB; transparency is composited on white."""
    if img.mode in ("RGBA", "RGBa", "LA", "La", "PA", "P") and (img.mode != "P" or "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        scale = 65535.0 if img.mode != "F" else max(float(values.max()), 1.0)
        return Image.fromarray((values / scale * 255).clip(0, 255).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def fit_image(img: Image.Image, size: tuple[int, int] | None) -> np.ndarray:
    """Centre-crop to the aspect of ``size`` ``(H, W)`` and Lanczos-resize; uint8 ``[H, W, 3]``."""
    img = rgb_image(img)
    if size is None:
        return np.asarray(img, dtype=np.uint8)
    target_h, target_w = size
    width, height = img.size
    crop_w = min(width, height * target_w / target_h)
    crop_h = min(height, width * target_h / target_w)
    left, top = (width - crop_w) / 2, (height - crop_h) / 2
    if (width, height) == (target_w, target_h):
        return np.asarray(img, dtype=np.uint8)
    resized = img.resize((target_w, target_h), Image.Resampling.LANCZOS,
                         box=(left, top, left + crop_w, top + crop_h))
    return np.asarray(resized, dtype=np.uint8)


def as_rgb(frames: np.ndarray) -> np.ndarray:
    """uint8 frames ``[T, H, W]``, ``[T, H, W, 1]`` or ``[T, H, W, 3]`` as ``[T, H, W, 3]``."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3) or frames.shape[0] == 0:
        raise ValueError(f"expected frames [T, H, W, 1 | 3] with T >= 1, got shape {frames.shape}")
    return np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames


def fit_frames(frames: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Centre-crop uint8 frames ``[N, H, W, 3]`` to the aspect of ``size`` ``(H, W)`` and resize
    them to it with Pillow's Lanczos filter; returns uint8 ``[N, size[0], size[1], 3]``."""
    hw = (int(size[0]), int(size[1]))
    if min(hw) < 1:
        raise ValueError(f"fit_frames: size must be >= 1, got {size!r}")
    return np.stack([fit_image(Image.fromarray(f), hw) for f in as_rgb(frames)])


def cut_clips(frames: np.ndarray, length: int, max_clips: int | None = None) -> list[np.ndarray]:
    """Consecutive, non-overlapping clips of ``length`` frames from ``[N, ...]``.

    A trailing remainder shorter than ``length`` is dropped, unless the whole video is shorter
    than one clip: then it is one clip, padded by repeating its last frame. ``max_clips`` keeps
    only the first clips.
    """
    if length < 1:
        raise ValueError(f"cut_clips: length must be >= 1, got {length}")
    frames = np.asarray(frames)
    if len(frames) == 0:
        raise ValueError("cut_clips: no frames")
    if len(frames) < length:
        pad = np.repeat(frames[-1:], length - len(frames), axis=0)
        return [np.concatenate([frames, pad], axis=0)]
    count = len(frames) // length
    if max_clips is not None:
        count = min(count, max(int(max_clips), 1))
    return [frames[i * length:(i + 1) * length] for i in range(count)]


def frame_strip(frames: np.ndarray, gutter: int = 2) -> np.ndarray:
    """Frames ``[T, H, W, 1 | 3]`` side by side, white gutters of ``gutter`` pixels between
    them: uint8 ``[H, T * W + (T - 1) * gutter, 3]``."""
    frames = as_rgb(frames)
    count, height, width, _ = frames.shape
    strip = np.full((height, count * width + (count - 1) * gutter, 3), 255, dtype=np.uint8)
    for i, frame in enumerate(frames):
        strip[:, i * (width + gutter):i * (width + gutter) + width] = frame
    return strip


def tile(clips: np.ndarray, nrow: int | None = None, gutter: int = 2) -> np.ndarray:
    """A batch of clips ``[B, T, H, W, 1 | 3]`` as one grid clip ``[T, GH, GW, 3]``: ``nrow``
    clips per row (default: a near-square grid), white gutters of ``gutter`` pixels around and
    between them (:func:`diffusionkit.grids.tile`; a single clip comes back as it is)."""
    clips = np.asarray(clips)
    if clips.ndim != 5 or clips.shape[0] == 0:
        raise ValueError(f"tile: expected clips [B, T, H, W, C], got shape {clips.shape}")
    return grids.tile(np.stack([as_rgb(clip) for clip in clips]), nrow, gutter)
