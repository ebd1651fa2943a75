"""The user's own files, for any modality: one sub-folder per class."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from diffusionkit.modality import MediaError, Modality

log = logging.getLogger(__name__)


class FolderDataset(Dataset):
    """Every file under ``root`` that the modality reads, labelled by its sub-folder.

    Files directly in ``root`` form one class named after ``root`` itself. All files are
    read once, up front, through ``modality.load_items`` (one item per file, or several, e.g.
    the clips of a long video); an unreadable file is reported by name and skipped, and a
    folder with nothing readable is an error.
    """

    def __init__(self, root: str | Path, modality: Modality) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise MediaError(f"data folder '{self.root}' does not exist; set data.dataset.root=<folder>")
        files = sorted(
            p for p in self.root.rglob("*")
            if p.is_file() and p.suffix.lower() in modality.file_extensions and not p.name.startswith(".")
        )
        if not files:
            raise MediaError(
                f"data folder '{self.root}' holds no {'/'.join(modality.file_extensions)} files"
            )
        self.classes = sorted({self._class_of(p) for p in files})
        items: list[Tensor] = []
        labels: list[int] = []
        self.skipped: list[str] = []
        for path in files:
            try:
                found = modality.load_items(path)
            except MediaError as err:
                log.warning("skipping %s", err)
                self.skipped.append(str(err))
                continue
            items += found
            labels += [self.classes.index(self._class_of(path))] * len(found)
        if not items:
            raise MediaError(f"data folder '{self.root}': none of its {len(files)} files could be read")
        self.x = torch.stack(items)
        self.labels = torch.tensor(labels, dtype=torch.long)

    def _class_of(self, path: Path) -> str:
        relative = path.relative_to(self.root)
        return relative.parts[0] if len(relative.parts) > 1 else self.root.name

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {"x": self.x[index], "label": self.labels[index]}
