"""Sketch guidance for graphic design: edge maps as a concatenated condition (sketch -> image).

Training derives a line drawing from every image (Sobel edge magnitude of the luminance,
thresholded); sampling reads the user's own drawing in the same convention: lines +1,
background -1. The condition is concatenated to the denoiser input, as in the
image-to-image models of Saharia et al. 2022 ("Palette").
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from diffusionkit.modality import ConcatCondition, Modality

from .files import DEFAULT_MAX_PIXELS, open_image
from .pixels import LUMA, fit, image_to_array, to_model

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def luminance(x: Tensor) -> Tensor:
    """``[B, C, H, W]`` in [-1, 1] to ``[B, 1, H, W]`` luminance (C is 1 or 3)."""
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def edge_map(x: Tensor, threshold: float = 0.25) -> Tensor:
    """Binary edges of a model-space batch: Sobel magnitude of the luminance (replicate padding,
    so image borders are no edges) above ``threshold`` (in units of the [-1, 1] range) -> +1,
    else -1."""
    kernel_x = _SOBEL_X.to(x)
    kernels = torch.stack([kernel_x, kernel_x.T]).unsqueeze(1)  # [2, 1, 3, 3]
    gradients = F.conv2d(F.pad(luminance(x), (1, 1, 1, 1), mode="replicate"), kernels) / 8.0
    magnitude = gradients.pow(2).sum(dim=1, keepdim=True).sqrt()
    return torch.where(magnitude > threshold / 2, 1.0, -1.0).to(x.dtype)


class SketchCondition(ConcatCondition):
    """A one-channel line drawing of the image, concatenated to the denoiser input.

    Args:
        threshold: edge strength (fraction of the full [-1, 1] range per pixel step) that
            counts as a line when deriving sketches from images.
    """

    channels = 1
    input_name = "sketch"

    def __init__(self, threshold: float = 0.25) -> None:
        self.threshold = threshold

    def from_data(self, x: Tensor) -> Tensor:
        return edge_map(x, self.threshold)

    def load(self, path: str | Path, modality: Modality) -> Tensor:
        """Read a drawing (dark lines on light paper or light on dark) as lines +1, paper -1.

        A drawing is mostly paper, so the paper tone is the median; pixels far from it are
        lines. A file that is an ordinary picture gives its own mostly-paper-free lines, so
        the result is still a usable (if busy) sketch.
        """
        grey = fit(image_to_array(open_image(path, getattr(modality, "max_pixels", DEFAULT_MAX_PIXELS)), 1),
                   modality.spatial_size)
        drawing = to_model(grey)  # [1, H, W] in [-1, 1]
        paper = drawing.median()
        lines = (drawing - paper).abs() > 0.5
        return torch.where(lines, 1.0, -1.0)
