"""The ``video`` modality: short clips, model space ``[channels, frames, height, width]`` in [-1, 1]."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from diffusionkit.media import FileWidgets, Layout, SummaryMethod, Widget
from diffusionkit.modality import MediaError, Modality, Rendered

from .summary import GifSummary
from .video_frames import cut_clips, frame_strip, tile
from .video_read import STILL_EXTENSIONS, VIDEO_EXTENSIONS, Limits, file_seconds, read_frames, read_still
from .video_write import GIF_MAX_DELAY_MS, MIN_FPS, write_gif, write_mp4, write_png

#: ITU-R 601-2 luma weights (Pillow's ``convert("L")``), for greyscale clips.
LUMA = (0.299, 0.587, 0.114)
#: a uint8 ``[H, W, C]`` picture (the frame strips) to TensorBoard.
PICTURE_WRITER = SummaryMethod("add_image", {"dataformats": "HWC"}, layout=Layout("uint8", 3, channel_axis=-1))
#: the studio's upload field and player for video files, and the looping GIF beside the player.
VIDEO_WIDGETS = FileWidgets(
    "video", upload=Widget("Video", {"sources": ["upload"]}), player=Widget("Video", {"buttons": ["download"]}),
    playable=(".mp4", ".webm"), viewer=Widget("Image", {"show_label": False, "height": 110, "interactive": False}),
    viewable=(".gif", ".png"))


def as_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """``size`` as ``(height, width)``: an int is a square, else ``[H, W]``."""
    hw = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"video size must be an int or [height, width] >= 1, got {size!r}")
    return hw  # type: ignore[return-value]


def to_model(frames: np.ndarray, channels: int) -> Tensor:
    """uint8 RGB frames ``[T, H, W, 3]`` -> float32 ``[channels, T, H, W]`` in [-1, 1]
    (``channels`` 1: ITU-R 601 luma)."""
    pixels = torch.from_numpy(np.ascontiguousarray(frames)).float().div(255.0)
    if channels == 1:
        pixels = (pixels * torch.tensor(LUMA)).sum(dim=-1, keepdim=True)
    return pixels.permute(3, 0, 1, 2).mul(2.0).sub(1.0).contiguous()


def to_frames(x: Tensor) -> np.ndarray:
    """Model space ``[C, T, H, W]`` (clamped to [-1, 1]) -> uint8 frames ``[T, H, W, C]``."""
    x = x.detach().float().cpu().clamp(-1.0, 1.0).add(1.0).mul(127.5).round()
    return x.to(torch.uint8).permute(1, 2, 3, 0).numpy()


class VideoModality(Modality):
    """Fixed-length clips at a fixed frame rate, read with PyAV (GIFs and stills with Pillow).

    Files are resampled to ``fps`` by their frame timestamps, every frame is centre-cropped to
    the aspect of ``size`` and Lanczos-resized, and the first ``frames`` frames make the clip
    (a shorter file repeats its last frame). A still image (``.png``, ``.jpg``...) loads as a
    clip of identical frames, e.g. the first frame for an image-to-video edit.

    Args:
        channels: 1 (luminance) or 3 (RGB).
        frames: frames per clip (the model's time axis, spatial axis 0).
        size: an int for square frames, or ``[height, width]``.
        fps: frames per second the clips are sampled at and written with.
        max_seconds: the longest file read whole (the folder dataset reads every clip of a
            file); a longer one is refused. Reading only the first clip stops at the clip.
        max_pixels: the most pixels a frame or still may have; a larger one is refused unread.
    """

    file_extensions: ClassVar[tuple[str, ...]] = VIDEO_EXTENSIONS + STILL_EXTENSIONS
    time_axis: ClassVar[int | None] = 0
    steps_are_items: ClassVar[bool] = True
    file_widgets: ClassVar[FileWidgets | None] = VIDEO_WIDGETS

    def __init__(self, channels: int = 3, frames: int = 16, size: int | Sequence[int] = 32, fps: float = 8.0,
                 max_seconds: float = Limits.max_seconds, max_pixels: int = Limits.max_pixels) -> None:
        if channels not in (1, 3):
            raise ValueError(f"VideoModality: channels must be 1 (grey) or 3 (RGB), got {channels}")
        if frames < 1 or not fps > 0:
            raise ValueError(f"VideoModality: need frames >= 1 and fps > 0, got {frames}, {fps}")
        if fps < MIN_FPS:
            raise ValueError(f"VideoModality: fps must be at least {MIN_FPS:.2g} (a GIF shows a frame for at most "
                             f"{GIF_MAX_DELAY_MS / 1000:g} s), got {fps}")
        if not (float(max_seconds) > 0 and int(max_pixels) > 0):
            raise ValueError(f"VideoModality: need max_seconds > 0 and max_pixels > 0, got {max_seconds}, {max_pixels}")
        self.frames, self.hw, self.fps = int(frames), as_hw(size), float(fps)
        self.limits = Limits(float(max_seconds), int(max_pixels))
        super().__init__(channels, (self.frames, *self.hw))

    # ------------------------------------------------------------------ files -> model space
    def read(self, path: str | Path, max_frames: int | None = None) -> np.ndarray:
        """A file as uint8 RGB frames ``[N, H, W, 3]`` at :attr:`fps`, fitted to the frame size;
        a still image gives :attr:`frames` identical frames."""
        path = Path(path)
        if path.suffix.lower() in STILL_EXTENSIONS:
            return np.repeat(read_still(path, self.hw, self.limits), self.frames, axis=0)
        return read_frames(path, self.fps, size=self.hw, max_frames=max_frames, limits=self.limits)

    def load(self, path: str | Path) -> Tensor:
        """The first clip of a file, float32 ``[C, frames, H, W]`` in [-1, 1]."""
        clip = cut_clips(self.read(path, max_frames=self.frames), self.frames, max_clips=1)[0]
        return to_model(clip, self.channels)

    def read_notes(self, path: str | Path) -> list[str]:
        """A file that plays on after the clip the model sees (its first :attr:`frames` at
        :attr:`fps`): that part is not used (``extend`` continues from the clip's end)."""
        seconds, clip = file_seconds(path), self.frames / self.fps
        if seconds is None or Path(path).suffix.lower() in STILL_EXTENSIONS or seconds <= clip + 1.0 / self.fps:
            return []
        return [f"it is {seconds:.2f} s long and the model sees a {clip:.2f} s clip of it (its first {self.frames} "
                f"frames at {self.fps:g} fps); the rest is not used: cut the part you want to a file of its own"]

    def load_clips(self, path: str | Path, max_clips: int | None = None) -> list[Tensor]:
        """Every consecutive, non-overlapping clip of a file (a remainder shorter than a clip is
        dropped; a file shorter than one clip gives one clip padded with its last frame)."""
        limit = None if max_clips is None else max_clips * self.frames
        return [to_model(clip, self.channels)
                for clip in cut_clips(self.read(path, max_frames=limit), self.frames, max_clips)]

    def load_items(self, path: str | Path) -> list[Tensor]:
        """For the folder dataset: every clip of a file."""
        return self.load_clips(path)

    # ------------------------------------------------------------------ model space -> files
    def _check_item(self, x: Tensor, path: str) -> None:
        if x.dim() != 4 or x.shape[0] != self.channels:
            raise MediaError(f"cannot write video '{path}': expected [{self.channels}, frames, H, W], "
                             f"got shape {tuple(x.shape)}")

    def save(self, x: Tensor, stem: str | Path) -> list[Path]:
        """One clip ``[C, T, H, W]`` (any ``T``) as ``stem.gif`` (exact for greyscale), ``stem.mp4``
        (H.264) and ``stem.png`` (its frames side by side)."""
        stem = Path(stem)
        self._check_item(x, f"{stem}.gif")
        frames = to_frames(x)
        return [write_gif(frames, stem.with_name(stem.name + ".gif"), self.fps),
                write_mp4(frames, stem.with_name(stem.name + ".mp4"), self.fps),
                write_png(frame_strip(frames), stem.with_name(stem.name + ".png"))]

    def save_grid(self, batch: Tensor, stem: str | Path) -> list[Path]:
        """A batch ``[B, C, T, H, W]`` as one clip of tiled frames (near-square grid, white
        2-pixel gutters; a batch of one is that clip): ``stem.gif``, ``stem.mp4`` and ``stem.png``
        (that clip's frame strip)."""
        stem = Path(stem)
        grid = tile(self._batch_frames(batch))
        gif_frames = grid[..., :1] if self.channels == 1 else grid
        return [write_gif(gif_frames, stem.with_name(stem.name + ".gif"), self.fps),
                write_mp4(grid, stem.with_name(stem.name + ".mp4"), self.fps),
                write_png(frame_strip(grid), stem.with_name(stem.name + ".png"))]

    def render(self, batch: Tensor) -> list[Rendered]:
        """For loggers: the clips as ``Rendered("video")``, uint8 ``[N, T, 3, H, W]`` (greyscale
        repeated to RGB) at ``round(fps)``, logged as one animated GIF (:class:`.summary.GifSummary`),
        and an ``"image"``: every clip's frame strip, one clip per row."""
        frames = self._batch_frames(batch)
        rgb = np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames
        video = np.ascontiguousarray(rgb.transpose(0, 1, 4, 2, 3))
        strips = [frame_strip(clip) for clip in frames]
        gutter = np.full((2, strips[0].shape[1], 3), 255, dtype=np.uint8)
        picture = np.concatenate([part for strip in strips for part in (strip, gutter)][:-1], axis=0)
        return [Rendered("video", video, max(1, round(self.fps)), GifSummary(), time_axis=1),
                Rendered("image", picture, writer=PICTURE_WRITER)]

    def _batch_frames(self, batch: Tensor) -> np.ndarray:
        if batch.dim() != 5 or batch.shape[0] == 0 or batch.shape[1] != self.channels:
            raise ValueError(f"VideoModality: expected a non-empty [B, {self.channels}, T, H, W], "
                             f"got {tuple(batch.shape)}")
        return np.stack([to_frames(x) for x in batch])

    # ------------------------------------------------------------------ measures
    def envelope(self, batch: Tensor) -> Tensor:
        """Motion energy per frame ``[B, T]``: the mean absolute difference of each frame to the
        previous one (over channels and pixels, in model-space units, so a full black-to-white
        change of every pixel is 2). Frame 0 has no predecessor and repeats frame 1's value, so
        a steady motion has a flat envelope; a still clip is all zeros."""
        x = batch.detach().float()
        if x.shape[2] < 2:
            return torch.zeros(x.shape[0], x.shape[2], device=x.device)
        motion = (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=(1, 3, 4))
        return torch.cat([motion[:, :1], motion], dim=1)

    def roundtrip(self, path: str | Path, stem: str | Path) -> dict[str, float]:
        """File -> model space -> ``stem.gif`` / ``stem.mp4`` / ``stem.png``; the error of each
        written video against the model-space clip (``psnr_db`` and ``model_space_rmse`` are the
        GIF's, the first file, as in the base class; ``mp4_*`` through H.264 and yuv420p)."""
        x = self.load(path)
        gif, mp4, _ = self.save(x, stem)
        metrics: dict[str, float] = {}
        for prefix, written in (("", gif), ("mp4_", mp4)):
            frames = read_frames(written, self.fps, max_frames=x.shape[1])[:, : self.hw[0], : self.hw[1]]
            y = to_model(cut_clips(frames, x.shape[1], max_clips=1)[0], self.channels)
            mse = float((y - x).square().mean())
            metrics[f"{prefix}model_space_rmse"] = mse ** 0.5
            metrics[f"{prefix}psnr_db"] = 10 * math.log10(4.0 / max(mse, 1e-20))
        return metrics
