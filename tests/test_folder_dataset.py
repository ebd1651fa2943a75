"""The core's folder dataset: sub-folders are classes, unreadable files are named and skipped."""

import logging

import numpy as np
import pytest

from diffusionkit.modality import MediaError
from diffusionkit.training.folder_dataset import FolderDataset
from tests.toy_modality import ToyModality


def test_classes_from_sub_folders_and_bad_files_skipped_by_name(tmp_path, caplog):
    modality = ToyModality(1, (4,))
    for cls, value in (("kick", 0.5), ("snare", -0.5)):
        (tmp_path / cls).mkdir()
        for i in range(2):
            np.save(tmp_path / cls / f"{i}.npy", np.full((1, 4), value, dtype=np.float32))
    (tmp_path / "snare" / "broken.npy").write_bytes(b"garbage")
    (tmp_path / "snare" / "notes.txt").write_text("ignored: not a file the modality reads")
    with caplog.at_level(logging.WARNING):
        data = FolderDataset(tmp_path, modality)
    assert data.classes == ["kick", "snare"]
    assert len(data) == 4
    assert [int(data[i]["label"]) for i in range(4)] == [0, 0, 1, 1]
    assert float(data[3]["x"][0, 0]) == -0.5
    assert len(data.skipped) == 1 and "broken.npy" in data.skipped[0]
    assert "broken.npy" in caplog.text


def test_missing_or_empty_folders_are_one_line_errors(tmp_path):
    modality = ToyModality(1, (4,))
    with pytest.raises(MediaError, match="does not exist; set data.dataset.root=<folder>"):
        FolderDataset(tmp_path / "nope", modality)
    with pytest.raises(MediaError, match="holds no .npy files"):
        FolderDataset(tmp_path, modality)
    (tmp_path / "bad.npy").write_bytes(b"x")
    with pytest.raises(MediaError, match="none of its 1 files could be read"):
        FolderDataset(tmp_path, modality)
