"""Odd image files, generated here: a named pipe called .png (it hung the loader), a picture
of more pixels than allowed, a folder class of broken files. One line each, nothing hangs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from diffusionkit_image.modality import ImageModality
from diffusionkit_image.sketch import SketchCondition
from PIL import Image

from diffusionkit.cli import main
from diffusionkit.modality import MediaError
from diffusionkit.training.folder_dataset import FolderDataset

PIPE = "it is a named pipe (FIFO), not a regular file; copy its data into a regular file"


def one_line_error(call, *args) -> str:
    with pytest.raises(MediaError) as info:
        call(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


def picture(path: Path, width: int = 40, height: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)).save(path)
    return path


def test_a_named_pipe_called_png_is_refused_unopened(named_pipe):
    path = named_pipe("drawing.png")
    modality = ImageModality(3, 8)
    assert one_line_error(modality.load, path) == f"cannot read image '{path}': {PIPE}"
    assert one_line_error(SketchCondition().load, path, modality) == f"cannot read image '{path}': {PIPE}"


def test_more_pixels_than_max_pixels_is_refused_before_decoding(tmp_path, monkeypatch):
    path = picture(tmp_path / "big.png", 3000, 2000)
    decoded: list[int] = []
    original = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1) or original(self))
    assert one_line_error(ImageModality(3, 8, max_pixels=1_000_000).load, path) == (
        f"cannot read image '{path}': it is 3000x2000 = 6000000 pixels (limit: max_pixels=1000000); if the file is "
        "right, raise the limit (modality.max_pixels=<pixels> for train, max_pixels=<pixels> for other commands)")
    assert not decoded
    assert ImageModality(3, 8).load(path).shape == (3, 8, 8)  # within the default 40 M


def test_a_32_kb_png_of_100_megapixels_is_refused_without_pillow_s_warning(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (10000, 10000), 1).save(path)
    assert path.stat().st_size < 100_000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = one_line_error(ImageModality(3, 8).load, path)
    assert message.startswith(f"cannot read image '{path}': it is 10000x10000 = 100000000 pixels (limit: "
                              "max_pixels=40000000)")
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_a_folder_class_of_broken_files_is_refused(tmp_path, named_pipe, caplog):
    root = tmp_path / "pictures"
    picture(root / "cats" / "a.png")
    (root / "dogs").mkdir(parents=True)
    (root / "dogs" / "text.png").write_text("not a picture")
    named_pipe("pictures/dogs/pipe.jpg")
    with pytest.raises(MediaError) as info:
        FolderDataset(root, ImageModality(3, 8))
    assert str(info.value) == (f"data folder '{root}': no usable file in class 'dogs', which the model would never "
                               "see; fix or replace the skipped files, or move the class out of the data folder")
    assert f"class 'dogs' of data folder '{root}' has no usable file: all 2 of its files were skipped" in caplog.text


def test_roundtrip_refuses_a_named_pipe(tmp_path, capsys, named_pipe):
    path = named_pipe("pipe.png")
    assert main(["roundtrip", "modality=image", f"input={path}", f"out={tmp_path / 'r'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert err.splitlines()[-1] == f"diffusionkit roundtrip: error: cannot read image '{path}': {PIPE}"


def test_a_large_picture_is_shrunk_in_its_own_format_before_float_copies():
    """A 40-megapixel picture took 2.6 GB as float32 copies; box-averaging it first keeps at least
    twice the model's size on each side, so the result is the same Lanczos fit of far fewer pixels."""
    from PIL import Image

    from diffusionkit_image.pixels import shrink

    big = Image.new("RGBA", (4000, 2000), (10, 20, 30, 255))
    small = shrink(big, (32, 32))
    assert small.mode == "RGBA" and small.size == (-(-4000 // 31), -(-2000 // 31)) and min(small.size) >= 64
    assert shrink(Image.new("L", (100, 100)), (32, 32)).size == (100, 100)  # under 4x: left whole
