"""A minimal Modality for the core's tests: .npy files of any rank, no plugin needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from diffusionkit.media import Layout, SummaryMethod
from diffusionkit.modality import MediaError, Modality, Rendered

#: the toy's rendering, a uint8 [H, W, 3] picture, to TensorBoard.
PICTURE_WRITER = SummaryMethod("add_image", {"dataformats": "HWC"}, layout=Layout("uint8", 3, channel_axis=-1))


class ToyModality(Modality):
    file_extensions = (".npy",)

    def load(self, path: str | Path) -> Tensor:
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise MediaError(f"cannot read array '{path}': {err}") from None
        if tuple(array.shape) != self.shape:
            raise MediaError(f"array '{path}' has shape {array.shape}, expected {self.shape}")
        return torch.from_numpy(array).float()

    def save(self, x: Tensor, stem: str | Path) -> list[Path]:
        path = Path(f"{stem}.npy")
        np.save(path, x.numpy())
        return [path]

    def save_grid(self, batch: Tensor, stem: str | Path) -> list[Path]:
        return self.save(batch, stem)

    def render(self, batch: Tensor) -> Rendered:
        flat = ((batch.flatten(1)[:, :64].clamp(-1, 1) + 1) * 127.5).to(torch.uint8).numpy()
        return Rendered("image", flat[:, :, None].repeat(3, axis=2), writer=PICTURE_WRITER)


class GaussianClasses(Dataset):
    """Class c is a constant signal of value (2c / (k - 1) - 1) plus small noise."""

    def __init__(self, shape: tuple[int, ...], num_classes: int = 2, n: int = 64, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % num_classes
        levels = self.labels.float() * 2 / max(1, num_classes - 1) - 1
        self.x = levels.view(-1, *[1] * len(shape)) + 0.05 * torch.randn(n, *shape, generator=generator)
        self.classes = [f"c{i}" for i in range(num_classes)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "label": self.labels[i]}
