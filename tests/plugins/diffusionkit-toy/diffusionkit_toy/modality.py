"""The toy modality: .npy files of any rank, for the core's tests (no media library needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from diffusionkit.media import Layout, SummaryMethod
from diffusionkit.modality import MediaError, Modality, Rendered, check_file, limit_error
from diffusionkit.prompt_checks import JUDGED_CLASS, PromptCheck, WordDirection, WordMatch

#: the toy's rendering, a uint8 [H, W, 3] picture, to TensorBoard.
PICTURE_WRITER = SummaryMethod("add_image", {"dataformats": "HWC"}, layout=Layout("uint8", 3, channel_axis=-1))


class ToyModality(Modality):
    """Model space is the file: an .npy array of shape ``[channels, *spatial_size]``; files of
    more than ``max_values`` numbers are refused before they are read (an option with a default,
    as real modalities have)."""

    file_extensions = (".npy",)

    def __init__(self, channels: int, spatial_size: Sequence[int], max_values: int = 1_000_000) -> None:
        super().__init__(channels, spatial_size)
        self.max_values = int(max_values)

    def load(self, path: str | Path) -> Tensor:
        path = check_file(path, "array")
        try:
            array = np.load(path, allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise MediaError(f"cannot read array '{path}': {err}") from None
        if array.size > self.max_values:
            raise limit_error(path, "array", f"it holds {array.size} numbers", "max_values", self.max_values)
        if tuple(array.shape) != self.shape:
            raise MediaError(f"array '{path}' has shape {array.shape}, expected {self.shape}")
        return torch.from_numpy(np.array(array, dtype=np.float32))

    def save(self, x: Tensor, stem: str | Path) -> list[Path]:
        path = Path(f"{stem}.npy")
        np.save(path, x.detach().cpu().float().numpy())
        return [path]

    def save_grid(self, batch: Tensor, stem: str | Path) -> list[Path]:
        return self.save(batch, stem)

    def render(self, batch: Tensor) -> Rendered:
        """The first 64 values of each item as one grey row of pixels (a picture loggers accept)."""
        flat = ((batch.flatten(1)[:, :64].clamp(-1, 1) + 1) * 127.5).to(torch.uint8).cpu().numpy()
        return Rendered("image", flat[:, :, None].repeat(3, axis=2), writer=PICTURE_WRITER)

    def describe(self, batch: Tensor) -> list[dict[str, float | str]]:
        """Each item's mean value: its ``level``."""
        return [{"level": float(item.float().mean())} for item in batch]

    def prompt_checks(self) -> list[PromptCheck]:
        """"a high blob" measures a higher level than "a low blob"; "blob 0" is judged class 0."""
        return [WordDirection("level", "level", low="low", high="high", template="a {word} blob"),
                WordMatch("class", JUDGED_CLASS, {"0": "0", "1": "1"}, template="blob {word}")]
