"""``toy_blobs``: a tiny generated dataset of any rank, deterministic by seed."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset


class ToyBlobs(Dataset):
    """Class c is a constant signal of level ``2c / (k - 1) - 1`` plus noise of std 0.05 (clamped to [-1, 1]), items
    ``[channels, *spatial_size]``, labels ``i % num_classes``, classes named "0", "1", ...; captions name the
    level in a word: "a low blob" (below -1/3), "a high blob" (above 1/3), else "a middle blob"."""

    #: the items are made, not read from files a config names, so a bundle's own config of this
    #: data may be built again (``evaluate`` and ``recognizer`` without ``data=``)
    reads_files = False

    def __init__(self, channels: int, spatial_size: Sequence[int], num_classes: int = 2, num_samples: int = 64,
                 seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        shape = (int(channels), *(int(s) for s in spatial_size))
        self.labels = torch.arange(num_samples) % num_classes
        levels = self.labels.float() * 2 / max(1, num_classes - 1) - 1
        noise = 0.05 * torch.randn(num_samples, *shape, generator=generator)
        self.x = (levels.view(-1, *[1] * len(shape)) + noise).clamp(-1, 1)
        self.classes = [str(i) for i in range(num_classes)]
        self.captions = [f"a {level_word(float(level))} blob" for level in levels]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "label": self.labels[i], "caption": self.captions[i]}


def level_word(level: float) -> str:
    return "low" if level < -1 / 3 else "high" if level > 1 / 3 else "middle"
