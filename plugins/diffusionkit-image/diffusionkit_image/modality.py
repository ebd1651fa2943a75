"""The ``image`` modality: model space ``[channels, height, width]`` in [-1, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch
from torch import Tensor

from diffusionkit.grids import tile
from diffusionkit.media import FileWidgets, Layout, SummaryMethod, Widget
from diffusionkit.modality import MediaError, Modality, Rendered
from diffusionkit.prompt_checks import JUDGED_CLASS, PromptCheck, WordMatch

from .augment import IMAGE_TRANSFORMS
from .captions import DARK, LIGHT, NAMED_COLOURS, SHAPE_NAMES, nearest_colour
from .files import DEFAULT_MAX_PIXELS, open_image, write_png
from .pixels import as_hw, fit, image_to_array, shrink, to_model, to_uint8


#: how far (in [0, 1] units, on the most different channel) a foreground pixel at least lies from the background
MIN_CONTRAST = 0.15
#: a uint8 ``[H, W, C]`` picture to TensorBoard (the audio and video plugins declare the same).
PICTURE_WRITER = SummaryMethod("add_image", {"dataformats": "HWC"}, layout=Layout("uint8", 3, channel_axis=-1))
#: the studio's upload field and player for image files.
IMAGE_WIDGETS = FileWidgets("image", upload=Widget("Image", {"sources": ["upload"], "type": "filepath"}),
                            player=Widget("Image", {"type": "filepath", "buttons": ["download"]}),
                            playable=(".png", ".gif", ".jpg", ".jpeg", ".webp"))


class ImageModality(Modality):
    """Still images read and written with Pillow.

    Args:
        channels: 1 (luminance) or 3 (RGB).
        size: an int for a square, or ``[height, width]``. Files are centre-cropped to
            this aspect and resized (Lanczos).
        max_pixels: the most pixels a file may have; a larger one is refused before decoding.
    """

    file_extensions: ClassVar[tuple[str, ...]] = (
        ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
    )
    file_widgets: ClassVar[FileWidgets | None] = IMAGE_WIDGETS

    def __init__(self, channels: int = 3, size: int | Sequence[int] = 32, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        if channels not in (1, 3):
            raise ValueError(f"ImageModality: channels must be 1 (grey) or 3 (RGB), got {channels}")
        if not int(max_pixels) > 0:
            raise ValueError(f"ImageModality: max_pixels must be > 0, got {max_pixels!r}")
        self.max_pixels = int(max_pixels)
        super().__init__(channels, as_hw(size))

    def load(self, path: str | Path) -> Tensor:
        """Read an image file as float32 ``[C, H, W]`` in [-1, 1]."""
        pixels = image_to_array(shrink(open_image(path, self.max_pixels), self.spatial_size), self.channels)
        return to_model(fit(pixels, self.spatial_size))

    def save(self, x: Tensor, stem: str | Path) -> list[Path]:
        """Write one item ``[C, H, W]`` as ``stem.png``."""
        path = Path(f"{stem}.png")
        if x.dim() != 3:
            raise MediaError(f"cannot write image '{path}': expected [C, H, W], got shape {tuple(x.shape)}")
        return [write_png(to_uint8(x), path)]

    def save_grid(self, batch: Tensor, stem: str | Path) -> list[Path]:
        """Write a batch ``[B, C, H, W]`` as one grid image ``stem.png``."""
        return [write_png(self.render(batch).data, Path(f"{stem}.png"))]

    def augmentations(self) -> dict[str, Callable[..., Tensor]]:
        """Flip, crop and jitter (see :mod:`diffusionkit_image.augment`)."""
        return dict(IMAGE_TRANSFORMS)

    def render(self, batch: Tensor) -> Rendered:
        """A near-square grid of the batch as uint8 ``[H, W, 3]``, 2-pixel white gutters."""
        if batch.dim() != 4 or batch.shape[0] == 0:
            raise ValueError(f"ImageModality.render: expected a non-empty [B, C, H, W], got {tuple(batch.shape)}")
        rgb = batch.detach().float().cpu().expand(-1, 3 if batch.shape[1] == 1 else -1, -1, -1)
        return Rendered("image", tile(np.stack([to_uint8(x) for x in rgb]), gutter=2), writer=PICTURE_WRITER)

    def describe(self, batch: Tensor) -> list[dict[str, float | str]]:
        """Per item of ``[B, C, H, W]``, its foreground (the pixels clearly unlike the border's median
        colour; see :func:`foreground`): ``colour`` (the nearest named palette colour of its mean RGB,
        or ``"light"``/``"dark"`` for 1 channel; ``"none"`` without a foreground), ``x`` and ``y``
        (its centroid, 0..1 from the left and from the top; 0.5 without one) and ``area`` (its share)."""
        return [_describe_item(item) for item in batch.detach().float().cpu().clamp(-1.0, 1.0).add(1.0).div(2.0)]

    def prompt_checks(self) -> list[PromptCheck]:
        """Colour, shape and position words, in the wording of the generated shapes' captions."""
        return [
            WordMatch("colour", "colour", {name: name for name in NAMED_COLOURS}, template="a {word} circle"),
            WordMatch("shape", JUDGED_CLASS, {name: name for name in SHAPE_NAMES}, template="a {word}"),
            WordMatch("horizontal position", "x", {"left": "low", "right": "high"}, template="a circle {word}",
                      split=0.5),
            WordMatch("vertical position", "y", {"top": "low", "bottom": "high"}, template="a circle {word}",
                      split=0.5),
        ]


def foreground(pixels: Tensor) -> Tensor:
    """A bool ``[H, W]`` mask of an item ``[C, H, W]`` in [0, 1]: the pixels whose largest channel
    difference from the border's median colour is over half the image's strongest (99th percentile)
    difference, and at least :data:`MIN_CONTRAST`."""
    distance = (pixels - _border_median(pixels)[:, None, None]).abs().amax(dim=0)
    strongest = torch.quantile(distance.flatten(), 0.99).item()
    return distance > max(MIN_CONTRAST, strongest / 2)


def _border_median(pixels: Tensor) -> Tensor:
    """The per-channel median ``[C]`` of the outermost rows and columns of ``[C, H, W]``."""
    border = torch.cat([pixels[:, 0], pixels[:, -1], pixels[:, :, 0], pixels[:, :, -1]], dim=1)
    return border.median(dim=1).values


def _describe_item(pixels: Tensor) -> dict[str, float | str]:
    """:meth:`ImageModality.describe` of one item ``[C, H, W]`` in [0, 1]."""
    mask = foreground(pixels)
    if not mask.any():
        return {"colour": "none", "x": 0.5, "y": 0.5, "area": 0.0}
    rows, cols = torch.nonzero(mask, as_tuple=True)
    height, width = mask.shape
    mean = pixels[:, mask].mean(dim=1)
    if len(mean) == 3:
        colour = nearest_colour((mean * 255.0).tolist())
    else:
        colour = LIGHT if mean.item() > _border_median(pixels).item() else DARK
    return {"colour": colour, "x": (cols.float().mean().item() + 0.5) / width,
            "y": (rows.float().mean().item() + 0.5) / height, "area": mask.float().mean().item()}
