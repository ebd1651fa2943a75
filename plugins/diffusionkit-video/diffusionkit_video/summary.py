"""Video clips for TensorBoard without moviepy: an animated GIF in an image summary.

``SummaryWriter.add_video`` encodes its GIF with moviepy, which recent moviepy releases no
longer support; TensorBoard itself shows any GIF stored in an image summary, so this encodes
the GIF with Pillow and writes the same summary.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from diffusionkit.media import MediaWriter, Rendered

from .video_frames import tile
from .video_write import gif_images, save_gif

#: the gutter between the tiled clips of a summary, in pixels.
GUTTER = 1


def gif_bytes(frames: np.ndarray, fps: float) -> bytes:
    """An endlessly looping GIF of uint8 ``[T, H, W, 1 | 3]`` frames."""
    buffer = io.BytesIO()
    save_gif(gif_images(frames), buffer, fps)
    return buffer.getvalue()


def add_video_summary(writer: Any, tag: str, clips: np.ndarray, step: int, fps: float) -> None:
    """Log uint8 ``[N, T, C, H, W]`` clips to a TensorBoard ``SummaryWriter`` as one animated GIF
    of the clips side by side in a near-square grid."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    frames = tile(np.asarray(clips).transpose(0, 1, 3, 4, 2), gutter=GUTTER)
    image = Summary.Image(height=frames.shape[1], width=frames.shape[2], colorspace=3,
                          encoded_image_string=gif_bytes(frames, fps))
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)


class GifSummary(MediaWriter):
    """The video plugin's writer: clips ``Rendered("video")`` to a ``SummaryWriter`` as a GIF."""

    def accepts(self, experiment: Any) -> bool:
        return callable(getattr(experiment, "_get_file_writer", None))

    def write(self, experiment: Any, tag: str, medium: Rendered, step: int) -> None:
        add_video_summary(experiment, tag, medium.data, step, medium.rate)

    def problem(self, medium: Rendered) -> str | None:
        data = medium.data
        if data.dtype != np.uint8 or data.ndim != 5 or data.shape[2] not in (1, 3):
            return (f"Rendered('{medium.kind}').data is {data.dtype} {list(data.shape)}; GifSummary writes uint8 "
                    f"[N, T, 1 | 3, H, W]")
        return None
