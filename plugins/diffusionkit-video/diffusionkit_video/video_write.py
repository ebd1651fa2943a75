"""Writing frames as MP4, GIF and PNG files with PyAV and Pillow, with one-line :class:`MediaError` messages."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from PIL import Image

from diffusionkit.modality import MediaError

from .video_frames import as_rgb
from .video_read import AV_ERRORS, first_line


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad the bottom row / right column by edge replication so H and W are even."""
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    return frames


def _encoder() -> str:
    """libx264 where this FFmpeg build has it, else FFmpeg's own MPEG-4 part 2 encoder."""
    try:
        av.codec.Codec("libx264", "w")
        return "libx264"
    except Exception:  # av.codec.codec.UnknownCodecError and friends
        return "mpeg4"


def write_mp4(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    """Write uint8 frames ``[T, H, W, 1 | 3]`` as an H.264 MP4 (libx264, CRF 17; FFmpeg's mpeg4
    encoder at a high bit rate where libx264 is missing), yuv420p so every player shows it.

    yuv420p needs an even height and width: an odd size is padded by one row / column that
    repeats the last one (edge replication), so the file can be one pixel larger than the
    frames. Parents of ``path`` are created. Raises MediaError (one line) if writing fails.
    """
    path = Path(path)
    frames = _even(as_rgb(frames))
    _, height, width, _ = frames.shape
    rate = Fraction(fps).limit_denominator(10000)
    codec = _encoder()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), mode="w", format="mp4") as container:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if codec == "libx264":
                stream.options = {"crf": "17", "preset": "medium"}
            else:
                stream.bit_rate = max(200_000, int(8 * width * height * float(rate)))
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    except AV_ERRORS as exc:
        raise MediaError(f"cannot write video '{path}': {first_line(exc)}") from exc
    return path


#: the longest a GIF shows one picture (its delay is a 16-bit count of centiseconds), and so the
#: lowest frame rate the modality writes
GIF_MAX_DELAY_MS = 655_350
MIN_FPS = 1000 / GIF_MAX_DELAY_MS


def gif_delays_ms(count: int, fps: float) -> list[int]:
    """Per-frame GIF delays in ms for ``fps``: GIF stores centiseconds, so frame ``i`` starts at
    ``i / fps`` rounded down to 10 ms (never late, so reading back at ``fps`` finds every frame);
    delays are at least 10 ms (players show anything under 20 ms slower, so > 50 fps GIFs play slow)."""
    starts = [int(i * 100 / fps) * 10 for i in range(count + 1)]
    return [max(b - a, 10) for a, b in zip(starts, starts[1:])]


def gif_images(frames: np.ndarray) -> list[Image.Image]:
    """uint8 frames ``[T, H, W]``, ``[T, H, W, 1]`` (greyscale) or ``[T, H, W, 3]`` (RGB) as Pillow images."""
    frames = np.asarray(frames)
    if frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    if frames.ndim == 4:
        frames = as_rgb(frames)
    elif frames.ndim != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"write_gif: expected uint8 frames [T, H, W, 1 | 3], got {frames.dtype} {frames.shape}")
    return [Image.fromarray(np.ascontiguousarray(f)) for f in frames]


def save_gif(images: list[Image.Image], target: str | Path | BinaryIO, fps: float) -> None:
    """A looping GIF of ``images`` at ``fps`` (delays by :func:`gif_delays_ms`) into a file or a buffer."""
    images[0].save(target, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=gif_delays_ms(len(images), fps))


def write_gif(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    """Write uint8 frames ``[T, H, W]``, ``[T, H, W, 1]`` (greyscale, exact: 256 grey levels) or
    ``[T, H, W, 3]`` (RGB, quantised by Pillow to 256 colours per frame) as a looping GIF.

    Delays follow :func:`gif_delays_ms`. Pillow merges consecutive identical frames into one with
    their summed delay, so a file can hold fewer frames than ``T``; reading it back at ``fps``
    by timestamps (:func:`.video_read.read_frames`) still gives ``T`` frames. Raises MediaError if writing fails.
    """
    path = Path(path)
    images = gif_images(frames)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_gif(images, path, fps)
    except struct.error as exc:  # Pillow merged identical frames into one shown longer than a GIF holds
        raise MediaError(f"cannot write video '{path}': a GIF shows one picture for at most "
                         f"{GIF_MAX_DELAY_MS / 1000:g} s, and {len(images)} frames at {fps:g} fps hold identical ones in a "
                         "row that last longer; give fewer frames= or a higher fps=") from exc
    except (OSError, ValueError) as exc:
        raise MediaError(f"cannot write video '{path}': {first_line(exc)}") from exc
    return path


def write_png(pixels: np.ndarray, path: str | Path) -> Path:
    """Write uint8 ``[H, W, 3]`` as a PNG (parents created); MediaError if writing fails."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(pixels)).save(path, format="PNG")
    except (OSError, ValueError) as exc:
        raise MediaError(f"cannot write image '{path}': {first_line(exc)}") from exc
    return path
