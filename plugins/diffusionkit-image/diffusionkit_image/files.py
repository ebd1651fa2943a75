"""Reading and writing image files, with one-line :class:`MediaError` messages."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from diffusionkit.modality import MediaError, check_file, limit_error

_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)
#: the most pixels an image may have unless the modality's ``max_pixels`` says otherwise.
DEFAULT_MAX_PIXELS = 40_000_000


def open_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Fully decode an image file (EXIF orientation applied) or raise MediaError. A path that is
    not a regular file (a named pipe, a device) is refused unopened, and an image of more than
    ``max_pixels`` before its pixels are decoded."""
    path = check_file(path, "image")
    try:
        with warnings.catch_warnings():  # Pillow's bomb warning: the check below names the limit instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            width, height = img.size
            if width * height > max_pixels:
                raise limit_error(path, "image", f"it is {width}x{height} = {width * height} pixels",
                                  "max_pixels", max_pixels, "pixels")
            img.load()
            return ImageOps.exif_transpose(img)
    except MediaError:
        raise
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
