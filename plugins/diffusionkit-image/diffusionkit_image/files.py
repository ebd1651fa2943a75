"""Reading and writing image files, with one-line :class:`MediaError` messages."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from diffusionkit.modality import MediaError

_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)


def open_image(path: str | Path) -> Image.Image:
    """Fully decode an image file (EXIF orientation applied) or raise MediaError."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise MediaError(f"cannot read image '{path}': the file is empty")
    try:
        with Image.open(path) as img:
            img.load()
            return ImageOps.exif_transpose(img)
    except _READ_ERRORS as exc:
        raise MediaError(f"cannot read image '{path}': {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """A short, user-facing reason for a failed read."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image in a format Pillow can read"
    if isinstance(exc, Image.DecompressionBombError):
        return "too many pixels (refused as a possible decompression bomb)"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"corrupt or truncated file ({text})"


def write_png(pixels: np.ndarray, path: Path) -> Path:
    """Write uint8 ``[H, W, 1 | 3]`` as a PNG at ``path`` (parents created) or raise MediaError."""
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise MediaError(f"cannot write image '{path}': expected 1 or 3 channels, got shape {pixels.shape}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(path, format="PNG")
    except OSError as exc:
        raise MediaError(f"cannot write image '{path}': {exc.strerror or exc}") from None
    return path
