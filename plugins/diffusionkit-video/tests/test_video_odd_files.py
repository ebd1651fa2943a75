"""Odd video files, generated here: a tiny GIF that plays for hours, huge frames, named pipes. Each
is one line naming the file, the limit and how to raise it, and decoding stops at the limit."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from diffusionkit_video import video_read
from diffusionkit_video.modality import VideoModality
from diffusionkit_video.video_read import Limits, read_frames, read_still
from diffusionkit_video.video_write import write_mp4
from PIL import Image

from diffusionkit.cli import main
from diffusionkit.modality import MediaError
from diffusionkit.training.folder_dataset import FolderDataset


def gif(path: Path, frames: int, delay_ms: int, size: int = 32) -> Path:
    """``frames`` flat frames of distinct greys, each shown for ``delay_ms``."""
    images = [Image.fromarray(np.full((size, size, 3), (12 * i) % 256, np.uint8)) for i in range(frames)]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=delay_ms, loop=0)
    return path


def long_delay_gif(path: Path) -> Path:
    """The probe's 5.8 KB-class GIF: 20 frames of 655.35 s (the longest GIF delay), 3.6 hours."""
    return gif(path, 20, 655350)


def raise_hint(option: str, unit: str) -> str:
    return (f"if the file is right, raise the limit (modality.{option}=<{unit}> for train, {option}=<{unit}> "
            "for other commands)")


def one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(MediaError) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.fixture
def conversions(monkeypatch) -> list[int]:
    """One entry per source frame converted to an array (the costly step of decoding)."""
    seen: list[int] = []
    original = video_read.fit_image
    monkeypatch.setattr(video_read, "fit_image", lambda img, hw: seen.append(1) or original(img, hw))
    return seen


# --- duration ----------------------------------------------------------------------------------


def test_a_gif_that_plays_for_hours_is_refused_at_the_limit(tmp_path, conversions):
    """It took video training to 5.6 GB: 104,858 frames at 8 fps. Now decoding stops at 600 s."""
    path = long_delay_gif(tmp_path / "long.gif")
    assert path.stat().st_size < 6000
    modality = VideoModality()
    assert one_line_error(modality.load_items, path) == (
        f"cannot read video '{path}': it lasts over 600 s (limit: max_seconds=600); "
        + raise_hint("max_seconds", "seconds"))
    assert len(conversions) == 1  # the first frame covers the first 655 s: it is converted once
    conversions.clear()
    assert modality.load(path).shape == (3, 16, 32, 32)  # its first clip alone is fine
    assert len(conversions) == 1


def test_max_seconds_is_the_option_that_lets_a_long_file_in(tmp_path):
    path = gif(tmp_path / "slow.gif", 20, 1000)  # 20 s
    assert "it lasts over 10 s (limit: max_seconds=10)" in one_line_error(
        VideoModality(max_seconds=10).load_items, path)
    clips = VideoModality(max_seconds=30).load_items(path)
    assert len(clips) == 10 and clips[0].shape == (3, 16, 32, 32)  # 160 frames at 8 fps


def test_a_container_longer_than_allowed_is_refused_from_its_header(tmp_path, conversions):
    frames = np.repeat(np.arange(0, 240, 10, dtype=np.uint8)[:, None, None, None], 16, axis=1)
    path = write_mp4(np.repeat(np.repeat(frames, 16, axis=2), 3, axis=3), tmp_path / "clip.mp4", 8)  # 3 s
    assert one_line_error(read_frames, path, 8, limits=Limits(max_seconds=1)) == (
        f"cannot read video '{path}': it lasts 3 s (limit: max_seconds=1); " + raise_hint("max_seconds", "seconds"))
    assert not conversions  # refused before a frame was decoded
    assert read_frames(path, 8, max_frames=8, limits=Limits(max_seconds=1)).shape[0] == 8  # one clip: fine


def test_source_frames_that_never_advance_are_capped(tmp_path):
    limits = Limits(max_seconds=0.05)  # 12 source frames at most
    items = video_read._capped(iter(range(100)), tmp_path / "x.mp4", limits)
    with pytest.raises(MediaError, match=r"it holds over 12 frames \(240 per second of max_seconds\) "
                                         r"\(limit: max_seconds=0.05\)"):
        list(items)


def test_the_folder_dataset_skips_the_long_gif_and_keeps_the_rest(tmp_path):
    long_delay_gif(tmp_path / "data" / "a" / "long.gif")
    gif(tmp_path / "data" / "a" / "ok.gif", 16, 250)  # 4 s: 32 frames, 2 clips
    gif(tmp_path / "data" / "b" / "ok.gif", 8, 250)
    data = FolderDataset(tmp_path / "data", VideoModality())
    assert data.classes == ["a", "b"] and len(data) == 3
    assert data.x.shape == (3, 3, 16, 32, 32)
    assert len(data.skipped) == 1 and "long.gif': it lasts over 600 s" in data.skipped[0]


# --- pixels ------------------------------------------------------------------------------------


def test_frames_and_stills_over_max_pixels_are_refused_before_decoding(tmp_path, conversions):
    big = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000), "white").save(big)
    small = Limits(max_pixels=1_000_000)
    assert one_line_error(read_still, big, (32, 32), small) == (
        f"cannot read image '{big}': it is 3000x2000 = 6000000 pixels (limit: max_pixels=1000000); "
        + raise_hint("max_pixels", "pixels"))
    animated = gif(tmp_path / "big.gif", 2, 100, size=1200)
    assert "its frames are 1200x1200 = 1440000 pixels (limit: max_pixels=1000000)" in one_line_error(
        read_frames, animated, 8, limits=small)
    mp4 = write_mp4(np.zeros((4, 64, 64, 3), np.uint8), tmp_path / "clip.mp4", 8)
    assert "its frames are 64x64 = 4096 pixels (limit: max_pixels=1000)" in one_line_error(
        VideoModality(max_pixels=1000).load, mp4)
    assert not conversions
    assert VideoModality().load(big).shape == (3, 16, 32, 32)  # within the default 40 M


def test_a_100_megapixel_still_is_refused_without_pillow_s_warning(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (10000, 10000), 1).save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = one_line_error(VideoModality().load, path)
    assert "it is 10000x10000 = 100000000 pixels (limit: max_pixels=40000000)" in message
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


# --- not regular files -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "what"), [("pipe.mp4", "video"), ("pipe.gif", "video"), ("pipe.png", "image")])
def test_a_named_pipe_is_refused_unopened(named_pipe, name, what):
    path = named_pipe(name)
    assert one_line_error(VideoModality().load, path) == (
        f"cannot read {what} '{path}': it is a named pipe (FIFO), not a regular file; copy its data into a "
        "regular file")


# --- through the command line: exit code 2, one line, no traceback ------------------------------


def error_lines(capsys, argv: list[str]) -> list[str]:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()


def test_roundtrip_refuses_a_named_pipe(tmp_path, capsys, named_pipe):
    path = named_pipe("pipe.gif")
    assert error_lines(capsys, ["roundtrip", "modality=video", f"input={path}", f"out={tmp_path / 'r'}"])[-1] == (
        f"diffusionkit roundtrip: error: cannot read video '{path}': it is a named pipe (FIFO), not a regular "
        "file; copy its data into a regular file")


@pytest.mark.slow
def test_folder_training_over_long_gifs_stops_in_one_line(tmp_path, capsys, caplog):
    root = tmp_path / "clips"
    long_delay_gif(root / "a" / "long.gif")
    long_delay_gif(root / "b" / "long.gif")
    lines = error_lines(capsys, ["train", "modality=video", "data=folder", f"data.dataset.root={root}",
                                 "trainer.max_steps=1", f"out={tmp_path / 'run'}"])
    assert lines[-1].startswith(f"diffusionkit train: error: data folder '{root}': none of its 2 files could be "
                                f"read (first: cannot read video '{root / 'a' / 'long.gif'}': it lasts over 600 s")
    assert caplog.text.count("has no usable file") == 2
