"""Reading video files and still images with PyAV and Pillow, with one-line :class:`MediaError` messages.

Frames come back as uint8 ``[N, H, W, 3]`` RGB arrays. Reading resamples a file to a fixed frame
rate by the frames' presentation timestamps, so a 24 fps file read at 8 fps gives every third frame
and a variable-rate file (or a GIF with uneven delays) gives what a viewer would see at the
requested rate.
"""

from __future__ import annotations

import math
import struct
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from diffusionkit.modality import MediaError, check_file, limit_error

from .video_frames import fit_image, rgb_image

#: containers read with PyAV, plus GIF (read with Pillow).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".webm", ".avi", ".mov", ".mkv", ".gif")
#: still images, read as a clip of identical frames (e.g. the first frame for ``animate``).
STILL_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

#: a GIF frame delay at or below this many ms is shown as 100 ms by browsers; so do we.
_GIF_MIN_DELAY_MS = 10
_GIF_DEFAULT_DELAY_MS = 100
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error,
               Image.DecompressionBombError)
#: what PyAV raises for a file it cannot open, decode or write (shared with :mod:`.video_write`).
AV_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError)
#: source frames per second of ``max_seconds`` that are decoded at most (a file whose frames do
#: not advance in time would otherwise be decoded without end).
MAX_SOURCE_FPS = 240


@dataclass(frozen=True)
class Limits:
    """How much of a file is decoded at most (the video modality's options of the same names).

    ``max_seconds``: a file read whole (every clip, for the folder dataset) may last this long;
    ``max_pixels``: a frame or still may have this many pixels.
    """

    max_seconds: float = 600.0
    max_pixels: int = 40_000_000

    def check_pixels(self, path: Path, what: str, width: int, height: int) -> None:
        """Refuse a frame (or still) of more than :attr:`max_pixels` before it is decoded in full."""
        if width * height > self.max_pixels:
            subject = "it is" if what == "image" else "its frames are"
            raise limit_error(path, what, f"{subject} {width}x{height} = {width * height} pixels",
                              "max_pixels", self.max_pixels, "pixels")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name if empty), for one-line MediaErrors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_file(path: Path, what: str) -> None:
    """Missing, directory, special (named pipe, device) and empty files, with their own
    messages; nothing is opened."""
    check_file(path, what)


def _av_reason(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, av.InvalidDataError):
        return "not a video in a format FFmpeg can read (invalid data)"
    return f"corrupt or unsupported file ({first_line(exc)})"


def _pil_reason(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image in a format Pillow can read"
    if isinstance(exc, Image.DecompressionBombError):
        return "too many pixels (refused as a possible decompression bomb)"
    return f"corrupt or truncated file ({first_line(exc)})"


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


def _av_timed(container: Any, path: Path, limits: Limits) -> Iterator[tuple[float, float, Any]]:
    """``(start, duration, frame)`` of the first video stream, in seconds; frames larger than
    ``limits`` allow are refused before they are converted."""
    if not container.streams.video:
        raise MediaError(f"cannot read video '{path}': the file has no video stream")
    stream = container.streams.video[0]
    limits.check_pixels(path, "video", stream.codec_context.width, stream.codec_context.height)
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    nominal = float(1 / rate) if rate else None
    index, last_start, last_interval = 0, None, None
    for frame in container.decode(stream):
        limits.check_pixels(path, "video", frame.width, frame.height)
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
        yield start, delay / 1000.0, rgb_image(frame)  # a copy: the iterator re-uses one image object
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


def _capped(timed: Iterable[Any], path: Path, limits: Limits) -> Iterator[Any]:
    """``timed`` that refuses the file once it has given more source frames than ``limits``
    allow (:data:`MAX_SOURCE_FPS` per second of ``max_seconds``)."""
    limit = math.ceil(limits.max_seconds * MAX_SOURCE_FPS)
    for count, item in enumerate(timed, 1):
        if count > limit:
            raise limit_error(path, "video", f"it holds over {limit} frames ({MAX_SOURCE_FPS} per second of "
                              "max_seconds)", "max_seconds", f"{limits.max_seconds:g}", "seconds")
        yield item


def _too_long(path: Path, limits: Limits, lasts: str = "") -> MediaError:
    return limit_error(path, "video", lasts or f"it lasts over {limits.max_seconds:g} s", "max_seconds",
                       f"{limits.max_seconds:g}", "seconds")


def _output_cap(fps: float, max_frames: int | None, limits: Limits) -> tuple[int, bool]:
    """How many output frames to decode at most, and whether reaching that many means the
    file is longer than ``limits.max_seconds`` (True) or only that the caller has enough."""
    allowed = math.ceil(limits.max_seconds * fps)
    if max_frames is not None and max_frames <= allowed:
        return max_frames, False
    return allowed + 1, True


def _open_picture(path: Path, what: str, limits: Limits) -> Image.Image:
    """``Image.open`` (nothing decoded yet) of a picture within ``limits.max_pixels``; Pillow's own
    bomb warning is left out, as this check is the one that names the limit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(path)
    try:
        limits.check_pixels(path, what, *img.size)
    except MediaError:
        img.close()
        raise
    return img


def _decode_gif(path: Path, fps: float, hw: tuple[int, int] | None, stop: int, limits: Limits) -> list[np.ndarray]:
    _check_gif_trailer(path)
    try:
        with _open_picture(path, "video", limits) as img:
            return _resample(_capped(_gif_timed(img), path, limits), fps, stop, lambda f: fit_image(f, hw))
    except MediaError:
        raise
    except _PIL_ERRORS as exc:
        raise MediaError(f"cannot read video '{path}': {_pil_reason(exc)}") from exc


def _decode_av(path: Path, fps: float, hw: tuple[int, int] | None, stop: int, whole: bool,
               limits: Limits) -> list[np.ndarray]:
    try:
        with av.open(str(path), mode="r") as container:
            seconds = container.duration / av.time_base if container.duration else 0.0
            if whole and seconds > limits.max_seconds + 1.0:  # said by the header: refuse before decoding
                raise _too_long(path, limits, f"it lasts {seconds:.0f} s")
            return _resample(_capped(_av_timed(container, path, limits), path, limits), fps, stop,
                             lambda f: fit_image(_upright(f), hw))
    except MediaError:
        raise
    except AV_ERRORS as exc:
        raise MediaError(f"cannot read video '{path}': {_av_reason(exc)}") from exc


def file_seconds(path: str | Path) -> float | None:
    """How long a video (or animated GIF) file plays by its container's header; None where the
    header does not say or the file cannot be opened (its reader judges it)."""
    try:
        with av.open(str(path), mode="r") as container:
            return container.duration / av.time_base if container.duration else None
    except AV_ERRORS:
        return None


def read_frames(path: str | Path, fps: float, *, size: Sequence[int] | None = None,
                max_frames: int | None = None, limits: Limits = Limits()) -> np.ndarray:
    """Decode a video (or animated GIF) file at ``fps`` frames per second.

    Args:
        path: a container PyAV reads (``.mp4``, ``.webm``, ``.avi``, ``.mov``, ``.mkv``...) or a
            ``.gif`` (read with Pillow, each frame shown for its own delay; delays of 10 ms or
            less count as 100 ms, as in browsers).
        fps: the output rate. Output frame ``k`` is the source frame shown nearest to time
            ``k / fps`` (timestamps from the file); the output covers the whole file.
        size: optional ``(H, W)``: fit each kept frame on the fly (see :func:`.video_frames.fit_frames`), so a
            long high-resolution file never sits in memory at full size.
        max_frames: stop decoding after this many output frames.
        limits: a file read past ``limits.max_seconds`` (``max_frames`` unset or above it), or with
            frames of more than ``limits.max_pixels``, is refused; decoding stops at the limit, so
            a small file that plays for hours costs no more than the limit.

    Returns:
        uint8 ``[N, H, W, 3]`` RGB, ``N >= 1``.

    Raises:
        MediaError: one line naming the file, for a missing, empty, special (named pipe),
            unreadable or frameless file, or one over ``limits``.
    """
    path = Path(path)
    if fps <= 0:
        raise ValueError(f"read_frames: fps must be > 0, got {fps}")
    hw = None if size is None else (int(size[0]), int(size[1]))
    _check_file(path, "video")
    stop, whole = _output_cap(fps, max_frames, limits)
    if path.suffix.lower() == ".gif":
        frames = _decode_gif(path, fps, hw, stop, limits)
    else:
        frames = _decode_av(path, fps, hw, stop, whole, limits)
    if whole and len(frames) >= stop:
        raise _too_long(path, limits)
    if not frames:
        raise MediaError(f"cannot read video '{path}': no frame could be decoded")
    return np.stack(frames)


def read_still(path: str | Path, size: Sequence[int] | None = None, limits: Limits = Limits()) -> np.ndarray:
    """A still image (EXIF orientation applied, transparency on white) as uint8 ``[1, H, W, 3]``;
    one of more than ``limits.max_pixels`` is refused before it is decoded."""
    path = Path(path)
    _check_file(path, "image")
    try:
        with _open_picture(path, "image", limits) as img:
            img.load()
            frame = fit_image(ImageOps.exif_transpose(img), None if size is None else (int(size[0]), int(size[1])))
    except MediaError:
        raise
    except _PIL_ERRORS as exc:
        raise MediaError(f"cannot read image '{path}': {_pil_reason(exc)}") from exc
    return frame[None]
