"""The user's own files, for any modality: one sub-folder per class."""

from __future__ import annotations

import csv
import logging
from collections import Counter
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from diffusionkit.modality import MediaError, Modality, file_problem, media_files
from diffusionkit.nets.text_conditioner import CAPTION

log = logging.getLogger(__name__)


class FolderDataset(Dataset):
    """Every file under ``root`` that the modality reads, labelled by its sub-folder.

    Files directly in ``root`` form one class named after ``root`` itself. A folder below a class
    folder names the items' source (``kick/kit_a/1.wav`` comes from ``kit_a``), else each file is
    its own: :attr:`sources`, for grading held out by source. All files are
    read once, up front, through ``modality.load_items`` (one item per file, or several, e.g.
    the clips of a long video). An unreadable file is reported by name and skipped; so is a
    path that is not a regular file (a named pipe, a device), without being opened. A class
    whose files were all skipped is named in a warning and refused (the model would have a
    class it never saw), and a folder with nothing readable is an error.
    """

    def __init__(self, root: str | Path, modality: Modality) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            found = "is not a folder" if self.root.exists() else "does not exist"
            raise MediaError(f"data folder '{self.root}' {found}; set data.dataset.root=<folder>")
        files = self._media_files(modality)
        self.classes = sorted({self._class_of(p) for p in files})
        items: list[Tensor] = []
        labels: list[int] = []
        #: each item's caption (see the class docstring)
        self.captions: list[str] = []
        table = caption_table(self.root)
        #: where each item came from, for splits and judges held out by source (see :meth:`_source_of`)
        self.sources: list[str] = []
        #: the file each item was read from (a long file gives several items)
        self.files: list[str] = []
        self.skipped: list[str] = []
        for path in files:
            found = self._read(path, modality)
            items += found
            labels += [self.classes.index(self._class_of(path))] * len(found)
            self.captions += [self._caption_of(path, table)] * len(found)
            self.sources += [self._source_of(path)] * len(found)
            self.files += [str(path)] * len(found)
        self._check_every_class_used(files, labels)
        self.x = torch.stack(items)
        self.labels = torch.tensor(labels, dtype=torch.long)

    def _media_files(self, modality: Modality) -> list[Path]:
        """The paths under ``root`` with the modality's suffixes (hidden files and folders left out)."""
        files = media_files(self.root, modality.file_extensions)
        if not files:
            raise MediaError(
                f"data folder '{self.root}' holds no {'/'.join(modality.file_extensions)} files"
            )
        return files

    def _read(self, path: Path, modality: Modality) -> list[Tensor]:
        """The items of one file, or none (warned and recorded in :attr:`skipped`)."""
        try:
            problem = file_problem(path)
            if problem is not None:
                raise MediaError(f"cannot read '{path}': {problem}")
            return modality.load_items(path)
        except MediaError as err:
            log.warning("skipping %s", err)
            self.skipped.append(str(err))
            return []

    def _check_every_class_used(self, files: list[Path], labels: list[int]) -> None:
        """Warn about each class with no usable file, then refuse: one line for the set or the classes."""
        per_class = Counter(self._class_of(p) for p in files)
        used = set(labels)
        empty = [name for index, name in enumerate(self.classes) if index not in used]
        for name in empty:
            log.warning("class '%s' of data folder '%s' has no usable file: all %d of its files were skipped",
                        name, self.root, per_class[name])
        if not labels:
            raise MediaError(f"data folder '{self.root}': none of its {len(files)} files could be read "
                             f"(first: {self.skipped[0]})")
        if empty:
            what = "class" if len(empty) == 1 else "classes"
            names = ", ".join(f"'{name}'" for name in empty)
            raise MediaError(f"data folder '{self.root}': no usable file in {what} {names}, which the model "
                             f"would never see; fix or replace the skipped files, or move the {what} "
                             "out of the data folder")

    def _class_of(self, path: Path) -> str:
        relative = path.relative_to(self.root)
        return relative.parts[0] if len(relative.parts) > 1 else self.root.name

    def _source_of(self, path: Path) -> str:
        """The recording an item comes from: the first folder below its class folder
        (``kick/kit_a/1.wav``: ``kit_a``, e.g. a kit or a session), else the file itself."""
        relative = path.relative_to(self.root)
        return relative.parts[1] if len(relative.parts) > 2 else relative.as_posix()

    def _caption_of(self, path: Path, table: dict[str, str]) -> str:
        sidecar = path.with_suffix(".txt")
        if sidecar.is_file():
            return read_caption(sidecar)
        return table.get(path.relative_to(self.root).as_posix(), self._class_of(path).replace("_", " "))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"x": self.x[index], "label": self.labels[index], CAPTION: self.captions[index]}


def read_caption(path: Path) -> str:
    """A sidecar caption file's text on one line (one line naming the file when unreadable)."""
    try:
        return " ".join(path.read_text(encoding="utf-8").split())
    except (OSError, UnicodeDecodeError) as err:
        raise MediaError(f"cannot read the caption '{path}': {err}") from None


def caption_table(root: Path) -> dict[str, str]:
    """``root/captions.csv`` as {file path relative to root: caption}; empty without one."""
    path = root / "captions.csv"
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise MediaError(f"cannot read '{path}': {err}") from None
    if rows and not {"file", "caption"} <= set(rows[0]):
        raise MediaError(f"'{path}' needs the columns file,caption (found {', '.join(rows[0])})")
    return {str(row["file"]).strip(): " ".join(str(row["caption"] or "").split()) for row in rows}
