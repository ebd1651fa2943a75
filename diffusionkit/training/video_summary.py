"""Video clips for TensorBoard without moviepy: an animated GIF in an image summary.

``SummaryWriter.add_video`` encodes its GIF with moviepy, which recent moviepy releases no
longer support; TensorBoard itself shows any GIF stored in an image summary, so this encodes
the GIF with Pillow and writes the same summary.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image
from tensorboard.compat.proto.summary_pb2 import Summary
from torchvision.utils import make_grid


def tile_clips(clips: np.ndarray) -> np.ndarray:
    """uint8 ``[N, T, C, H, W]`` -> ``[T, H', W', 3]``: the clips side by side in a near-square grid."""
    clips = torch.as_tensor(clips)
    if clips.shape[2] == 1:
        clips = clips.expand(-1, -1, 3, -1, -1)
    nrow = math.ceil(math.sqrt(clips.shape[0]))
    frames = [make_grid(clips[:, t], nrow=nrow, padding=1, pad_value=255) for t in range(clips.shape[1])]
    return torch.stack(frames).permute(0, 2, 3, 1).numpy()


def gif_bytes(frames: np.ndarray, fps: float) -> bytes:
    """An endlessly looping GIF of uint8 ``[T, H, W, 3]`` frames."""
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=max(20, round(1000 / max(fps, 1e-3))))
    return buffer.getvalue()


def add_video_summary(writer, tag: str, clips: np.ndarray, step: int, fps: float) -> None:
    """Log uint8 ``[N, T, C, H, W]`` clips to a TensorBoard ``SummaryWriter`` as one animated GIF."""
    frames = tile_clips(clips)
    image = Summary.Image(height=frames.shape[1], width=frames.shape[2], colorspace=3,
                          encoded_image_string=gif_bytes(frames, fps))
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)
