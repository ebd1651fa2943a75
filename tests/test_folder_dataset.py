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
    (tmp_path / "file.npy").write_bytes(b"x")
    with pytest.raises(MediaError, match="file.npy' is not a folder; set data.dataset.root=<folder>"):
        FolderDataset(tmp_path / "file.npy", modality)
    (tmp_path / "file.npy").unlink()
    with pytest.raises(MediaError, match="holds no .npy files"):
        FolderDataset(tmp_path, modality)
    (tmp_path / "bad.npy").write_bytes(b"x")
    with pytest.raises(MediaError, match="none of its 1 files could be read"):
        FolderDataset(tmp_path, modality)


def _class_folder(root, name: str, arrays: dict[str, bytes | float]) -> None:
    """``root/name/`` with one .npy per entry: a float fills a good array, bytes are written as is."""
    (root / name).mkdir()
    for stem, content in arrays.items():
        path = root / name / f"{stem}.npy"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            np.save(path, np.full((1, 4), content, dtype=np.float32))


def test_a_class_with_no_usable_file_is_warned_about_and_refused(tmp_path, caplog):
    """A class whose files are all unreadable would be a class the model never saw."""
    _class_folder(tmp_path, "kick", {"0": 0.5, "1": 0.4})
    _class_folder(tmp_path, "snare", {"0": b"garbage", "1": b"more garbage"})
    _class_folder(tmp_path, "hat", {"0": b"junk"})
    with caplog.at_level(logging.WARNING), pytest.raises(MediaError) as info:
        FolderDataset(tmp_path, ToyModality(1, (4,)))
    assert str(info.value) == (
        f"data folder '{tmp_path}': no usable file in classes 'hat', 'snare', which the model would never "
        "see; fix or replace the skipped files, or move the classes out of the data folder")
    warned = [r.getMessage() for r in caplog.records if "has no usable file" in r.getMessage()]
    assert warned == [f"class 'hat' of data folder '{tmp_path}' has no usable file: all 1 of its files were skipped",
                      f"class 'snare' of data folder '{tmp_path}' has no usable file: all 2 of its files were skipped"]


def test_nothing_readable_names_the_first_reason(tmp_path, caplog):
    _class_folder(tmp_path, "kick", {"0": b"garbage"})
    _class_folder(tmp_path, "snare", {"0": b"garbage"})
    with caplog.at_level(logging.WARNING), pytest.raises(MediaError) as info:
        FolderDataset(tmp_path, ToyModality(1, (4,)))
    message = str(info.value)
    assert message.startswith(f"data folder '{tmp_path}': none of its 2 files could be read (first: cannot read array")
    assert "\n" not in message
    assert caplog.text.count("has no usable file") == 2


def test_a_named_pipe_is_skipped_without_being_opened(tmp_path, caplog, named_pipe):
    """Opening a FIFO would block until a writer appears: the dataset must not even try."""
    _class_folder(tmp_path, "kick", {"0": 0.5})
    named_pipe("kick/pipe.npy")
    opened: list[str] = []
    modality = ToyModality(1, (4,))
    original = modality.load
    modality.load = lambda path: opened.append(str(path)) or original(path)  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING):
        data = FolderDataset(tmp_path, modality)
    assert len(data) == 1 and opened == [str(tmp_path / "kick" / "0.npy")]
    assert data.skipped == [f"cannot read '{tmp_path / 'kick' / 'pipe.npy'}': it is a named pipe (FIFO), "
                            "not a regular file; copy its data into a regular file"]
