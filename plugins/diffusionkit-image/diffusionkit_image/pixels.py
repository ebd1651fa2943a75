"""Pure conversions between Pillow images, float arrays and uint8 pixels (no file I/O)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

#: ITU-R 601-2 luma weights, the ones Pillow uses for ``convert("L")``.
LUMA = (0.299, 0.587, 0.114)

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")


def as_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """``size`` as ``(height, width)``: an int is a square, else ``[H, W]``."""
    hw = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"image size must be an int or [height, width] >= 1, got {size!r}")
    return hw  # type: ignore[return-value]


def image_to_array(img: Image.Image, channels: int) -> np.ndarray:
    """Convert any Pillow image to float32 ``[H, W, channels]`` in [0, 1].

    Transparency is composited on white; 16-bit and 32-bit integer images are scaled by the
    16-bit range (or by their own range if they exceed it); float images are kept if they lie
    in [0, 1], else scaled by their range. ``channels`` 1 is luminance, 3 is RGB.
    """
    if img.mode in _SIXTEEN_BIT:
        pixels = np.asarray(img, dtype=np.float32) / 65535.0
    elif img.mode in ("I", "F"):
        pixels = _unit_range(np.asarray(img, dtype=np.float64), 65535.0 if img.mode == "I" else 1.0)
    elif img.mode in _ALPHA or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:]
        pixels = rgba[..., :3] * alpha + (1.0 - alpha)
    else:
        pixels = np.asarray(img.convert("L" if img.mode in ("L", "1") else "RGB"), np.float32) / 255.0
    return _to_channels(pixels.astype(np.float32), channels)


def _unit_range(values: np.ndarray, full_scale: float) -> np.ndarray:
    """Scale by ``full_scale`` if values lie in [0, full_scale], else by their own range."""
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= full_scale:
        return values / full_scale
    return (values - low) / max(high - low, 1e-12)


def _to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """``[H, W]`` grey or ``[H, W, 3]`` RGB to ``[H, W, channels]`` (1: luminance, 3: RGB)."""
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], channels, axis=2)
    if channels == 1:  # in float64, so that every CPU rounds the same float32 (a float32 matmul's order varies)
        return (pixels.astype(np.float64) @ np.asarray(LUMA, np.float64)).astype(np.float32)[..., None]
    return pixels


def shrink(img: Image.Image, hw: tuple[int, int]) -> Image.Image:
    """``img`` box-averaged by the largest whole factor that keeps it at least twice ``hw`` on
    each side, in its own pixel format: a 40-megapixel photo becomes a few hundred kilobytes
    before any float copy is made (the final resize is still :func:`fit`'s Lanczos)."""
    factor = min(img.width // (2 * hw[1]), img.height // (2 * hw[0]))
    if factor < 2:
        return img
    try:
        return img.reduce(factor)
    except (ValueError, NotImplementedError):  # a pixel format Pillow cannot reduce: keep it whole
        return img


def fit(pixels: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Centre-crop ``[H, W, C]`` to the aspect of ``hw`` and resize to it (Lanczos), in [0, 1]."""
    height, width = pixels.shape[:2]
    target_h, target_w = hw
    crop_w = min(width, height * target_w / target_h)
    crop_h = min(height, width * target_h / target_w)
    left, top = (width - crop_w) / 2, (height - crop_h) / 2
    box = (left, top, left + crop_w, top + crop_h)
    planes = [
        np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c])).resize(
            (target_w, target_h), Image.Resampling.LANCZOS, box=box))
        for c in range(pixels.shape[2])
    ]
    return np.clip(np.stack(planes, axis=2), 0.0, 1.0)


def to_model(pixels: np.ndarray) -> Tensor:
    """Float ``[H, W, C]`` in [0, 1] to a model-space tensor ``[C, H, W]`` in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).mul(2.0).sub(1.0)


def to_uint8(x: Tensor) -> np.ndarray:
    """Model-space ``[C, H, W]`` (clamped to [-1, 1]) to uint8 ``[H, W, C]``."""
    x = x.detach().float().clamp(-1.0, 1.0).add(1.0).mul(127.5).round()
    return x.to(torch.uint8).permute(1, 2, 0).cpu().numpy()
