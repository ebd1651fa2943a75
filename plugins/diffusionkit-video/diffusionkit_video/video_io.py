"""Reading and writing video files with PyAV and Pillow, with one-line :class:`MediaError` messages.

Frames are numpy arrays, uint8 ``[N, H, W, 3]`` (RGB) unless a function says otherwise. Reading
resamples a file to a fixed frame rate by the frames' presentation timestamps, so a 24 fps file
read at 8 fps gives every third frame and a variable-rate file (or a GIF with uneven delays) gives
what a viewer would see at the requested rate.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from diffusionkit.modality import MediaError

#: containers read with PyAV, plus GIF (read with Pillow).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".webm", ".avi", ".mov", ".mkv", ".gif")
#: still images, read as a clip of identical frames (e.g. the first frame for ``animate``).
STILL_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

#: a GIF frame delay at or below this many ms is shown as 100 ms by browsers; so do we.
_GIF_MIN_DELAY_MS = 10
_GIF_DEFAULT_DELAY_MS = 100
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error,
               Image.DecompressionBombError)
_AV_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError)


# ---------------------------------------------------------------------------------- reading
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_file(path: Path, what: str) -> None:
    """Missing, directory and empty files, with their own messages."""
    if not path.exists():
        raise MediaError(f"cannot read {what} '{path}': no such file")
    if path.is_dir():
        raise MediaError(f"cannot read {what} '{path}': it is a directory")
    if path.stat().st_size == 0:
        raise MediaError(f"cannot read {what} '{path}': the file is empty")


def _av_reason(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, av.InvalidDataError):
        return "not a video in a format FFmpeg can read (invalid data)"
    return f"corrupt or unsupported file ({_first_line(exc)})"


def _pil_reason(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image in a format Pillow can read"
    if isinstance(exc, Image.DecompressionBombError):
        return "too many pixels (refused as a possible decompression bomb)"
    return f"corrupt or truncated file ({_first_line(exc)})"


def _rgb(img: Image.Image) -> Image.Image:
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


def _fit_image(img: Image.Image, size: tuple[int, int] | None) -> np.ndarray:
    """Centre-crop to the aspect of ``size`` ``(H, W)`` and Lanczos-resize; uint8 ``[H, W, 3]``."""
    img = _rgb(img)
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


def _resample(timed: Iterable[tuple[float, float, Any]], fps: float, max_frames: int | None,
              convert: Any) -> list[np.ndarray]:
    """Frames at ``k / fps`` from ``(start_seconds, duration_seconds, frame)`` in presentation order.

    Output time ``t_k`` shows the frame on screen at ``t_k``: the last one that has started by
    then, where a start up to ``min(1 / (4 fps), 10 ms)`` late still counts (timestamps stored in
    ms or, in GIFs, in centiseconds are rounded). The output covers the file up to the last
    frame's start + duration, so ``N`` source frames of ``1/r`` s each give ``ceil(N * fps / r)``
    output frames. ``convert`` turns a source frame into an array once, when first needed, so
    skipped frames cost no conversion.
    """
    out: list[np.ndarray] = []
    previous: list[Any] = []  # [start, duration, frame, converted-or-None]
    origin: float | None = None
    step = 1.0 / fps
    epsilon = 1e-9
    tolerance = min(0.25 * step, 0.010)

    def emit_until(limit: float) -> bool:
        """Emit the previous frame for every output time before ``limit``; True when full."""
        while len(out) * step < limit - epsilon:
            if previous[3] is None:
                previous[3] = convert(previous[2])
            out.append(previous[3])
            if max_frames is not None and len(out) >= max_frames:
                return True
        return False

    for start, duration, frame in timed:
        if origin is None:
            origin = start
        start -= origin
        if previous:
            if start < previous[0]:  # out-of-order timestamp: keep the display order we were given
                start = previous[0] + previous[1]
            if emit_until(start - tolerance):
                return out
        previous[:] = [start, duration, frame, None]
    if previous:
        end = previous[0] + max(previous[1], epsilon)
        if not emit_until(end) and not out:
            out.append(convert(previous[2]) if previous[3] is None else previous[3])
    return out


def _av_timed(container: Any, path: Path) -> Iterator[tuple[float, float, Any]]:
    """``(start, duration, frame)`` of the first video stream, in seconds."""
    if not container.streams.video:
        raise MediaError(f"cannot read video '{path}': the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    nominal = float(1 / rate) if rate else None
    index, last_start, last_interval = 0, None, None
    for frame in container.decode(stream):
        start = frame.time
        if start is None:
            start = index * (nominal or 1.0 / 25.0)
        duration = None
        if getattr(frame, "duration", None) and frame.time_base is not None:
            duration = float(frame.duration * frame.time_base)
        if last_start is not None and start > last_start:
            last_interval = start - last_start
        yield start, duration or last_interval or nominal or 1.0 / 25.0, frame
        last_start, index = start, index + 1


def _upright(frame: Any) -> Image.Image:
    """A decoded PyAV frame as Pillow RGB, turned as its display matrix says (phone videos
    shot upright are stored sideways with a -90 degree rotation)."""
    img = frame.to_image()
    angle = int(round(getattr(frame, "rotation", 0) or 0))
    return img.rotate(angle, expand=True) if angle % 360 else img  # both count counterclockwise


def _gif_timed(img: Image.Image) -> Iterator[tuple[float, float, Image.Image]]:
    """``(start, duration, frame)`` of a GIF's frames from their delays (Pillow composes them)."""
    start = 0.0
    for frame in ImageSequence.Iterator(img):
        delay = frame.info.get("duration") or 0
        delay = _GIF_DEFAULT_DELAY_MS if delay <= _GIF_MIN_DELAY_MS else delay
        yield start, delay / 1000.0, _rgb(frame)  # a copy: the iterator re-uses one image object
        start += delay / 1000.0


def _check_gif_trailer(path: Path) -> None:
    """A GIF cut at a frame boundary decodes without complaint to fewer frames; its missing
    trailer byte (``;``, zero padding allowed after it) gives it away."""
    try:
        with path.open("rb") as f:
            header = f.read(6)
            f.seek(max(0, path.stat().st_size - 64))
            tail = f.read().rstrip(b"\x00")
    except OSError as exc:
        raise MediaError(f"cannot read video '{path}': {_pil_reason(exc)}") from exc
    if header[:3] == b"GIF" and not tail.endswith(b";"):
        raise MediaError(f"cannot read video '{path}': truncated GIF (the file ends before its trailer)")


def read_frames(path: str | Path, fps: float, *, size: Sequence[int] | None = None,
                max_frames: int | None = None) -> np.ndarray:
    """Decode a video (or animated GIF) file at ``fps`` frames per second.

    Args:
        path: a container PyAV reads (``.mp4``, ``.webm``, ``.avi``, ``.mov``, ``.mkv``...) or a
            ``.gif`` (read with Pillow, each frame shown for its own delay; delays of 10 ms or
            less count as 100 ms, as in browsers).
        fps: the output rate. Output frame ``k`` is the source frame shown nearest to time
            ``k / fps`` (timestamps from the file); the output covers the whole file.
        size: optional ``(H, W)``: fit each kept frame on the fly (see :func:`fit_frames`), so a
            long high-resolution file never sits in memory at full size.
        max_frames: stop decoding after this many output frames.

    Returns:
        uint8 ``[N, H, W, 3]`` RGB, ``N >= 1``.

    Raises:
        MediaError: one line naming the file, for a missing, empty, unreadable or frameless file.
    """
    path = Path(path)
    if fps <= 0:
        raise ValueError(f"read_frames: fps must be > 0, got {fps}")
    hw = None if size is None else (int(size[0]), int(size[1]))
    _check_file(path, "video")
    if path.suffix.lower() == ".gif":
        _check_gif_trailer(path)
        try:
            with Image.open(path) as img:
                frames = _resample(_gif_timed(img), fps, max_frames, lambda f: _fit_image(f, hw))
        except _PIL_ERRORS as exc:
            raise MediaError(f"cannot read video '{path}': {_pil_reason(exc)}") from exc
    else:
        try:
            with av.open(str(path), mode="r") as container:
                frames = _resample(_av_timed(container, path), fps, max_frames,
                                   lambda f: _fit_image(_upright(f), hw))
        except MediaError:
            raise
        except _AV_ERRORS as exc:
            raise MediaError(f"cannot read video '{path}': {_av_reason(exc)}") from exc
    if not frames:
        raise MediaError(f"cannot read video '{path}': no frame could be decoded")
    return np.stack(frames)


def read_still(path: str | Path, size: Sequence[int] | None = None) -> np.ndarray:
    """A still image (EXIF orientation applied, transparency on white) as uint8 ``[1, H, W, 3]``."""
    path = Path(path)
    _check_file(path, "image")
    try:
        with Image.open(path) as img:
            img.load()
            frame = _fit_image(ImageOps.exif_transpose(img), None if size is None else (int(size[0]), int(size[1])))
    except _PIL_ERRORS as exc:
        raise MediaError(f"cannot read image '{path}': {_pil_reason(exc)}") from exc
    return frame[None]


# ---------------------------------------------------------------------------------- frames
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
    return np.stack([_fit_image(Image.fromarray(f), hw) for f in as_rgb(frames)])


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
    between them (the layout of torchvision's ``make_grid``)."""
    clips = np.asarray(clips)
    if clips.ndim != 5 or clips.shape[0] == 0:
        raise ValueError(f"tile: expected clips [B, T, H, W, C], got shape {clips.shape}")
    count, steps, height, width, _ = clips.shape
    nrow = nrow or math.ceil(math.sqrt(count))
    rows = math.ceil(count / nrow)
    grid = np.full((steps, rows * (height + gutter) + gutter, nrow * (width + gutter) + gutter, 3), 255, np.uint8)
    for i, clip in enumerate(clips):
        top, left = gutter + (i // nrow) * (height + gutter), gutter + (i % nrow) * (width + gutter)
        grid[:, top:top + height, left:left + width] = as_rgb(clip)
    return grid


# ---------------------------------------------------------------------------------- writing
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
    except _AV_ERRORS as exc:
        raise MediaError(f"cannot write video '{path}': {_first_line(exc)}") from exc
    return path


def gif_delays_ms(count: int, fps: float) -> list[int]:
    """Per-frame GIF delays in ms for ``fps``: GIF stores centiseconds, so frame ``i`` starts at
    ``i / fps`` rounded down to 10 ms (never late, so reading back at ``fps`` finds every frame);
    delays are at least 10 ms (players show anything under 20 ms slower, so > 50 fps GIFs play slow)."""
    starts = [int(i * 100 / fps) * 10 for i in range(count + 1)]
    return [max(b - a, 10) for a, b in zip(starts, starts[1:])]


def write_gif(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    """Write uint8 frames ``[T, H, W]``, ``[T, H, W, 1]`` (greyscale, exact: 256 grey levels) or
    ``[T, H, W, 3]`` (RGB, quantised by Pillow to 256 colours per frame) as a looping GIF.

    Delays follow :func:`gif_delays_ms`. Pillow merges consecutive identical frames into one with
    their summed delay, so a file can hold fewer frames than ``T``; reading it back at ``fps``
    by timestamps (:func:`read_frames`) still gives ``T`` frames. Raises MediaError if writing fails.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    if frames.ndim == 4:
        frames = as_rgb(frames)
    elif frames.ndim != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"write_gif: expected uint8 frames [T, H, W, 1 | 3], got {frames.dtype} {frames.shape}")
    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        images[0].save(path, format="GIF", save_all=True, append_images=images[1:], loop=0,
                       duration=gif_delays_ms(len(images), fps))
    except (OSError, ValueError) as exc:
        raise MediaError(f"cannot write video '{path}': {_first_line(exc)}") from exc
    return path


def write_png(pixels: np.ndarray, path: str | Path) -> Path:
    """Write uint8 ``[H, W, 3]`` as a PNG (parents created); MediaError if writing fails."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(pixels)).save(path, format="PNG")
    except (OSError, ValueError) as exc:
        raise MediaError(f"cannot write image '{path}': {_first_line(exc)}") from exc
    return path
