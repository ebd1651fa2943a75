"""The ``video`` modality: model space, load/save round trips, stills, rendering and the motion envelope."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest
import torch
from diffusionkit_video.datasets import SpritesDataset
from diffusionkit_video.modality import VideoModality, to_frames, to_model
from diffusionkit_video.video_write import write_mp4
from PIL import Image

from diffusionkit.modality import MediaError, Rendered


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of model-space tensors (peak-to-peak 2), i.e. of 8-bit pixels with peak 255."""
    return 10 * math.log10(4.0 / max(float((a - b).square().mean()), 1e-20))


@pytest.fixture(scope="module")
def sprites():
    return {c: SpritesDataset(frames=16, size=32, channels=c, per_class=2, seed=0) for c in (1, 3)}


def test_shape_time_axis_and_extensions():
    m = VideoModality(channels=1, frames=8, size=[24, 40], fps=12)
    assert m.shape == (1, 8, 24, 40) and m.spatial_rank == 3 and m.time_axis == 0
    assert {".mp4", ".webm", ".avi", ".mov", ".mkv", ".gif", ".png", ".jpg"} <= set(m.file_extensions)
    with pytest.raises(ValueError):
        VideoModality(channels=2)


def test_to_model_and_back_is_exact_for_uint8():
    frames = np.random.default_rng(0).integers(0, 256, (4, 6, 8, 3), dtype=np.uint8)
    x = to_model(frames, 3)
    assert x.shape == (3, 4, 6, 8) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert np.array_equal(to_frames(x), frames)
    grey = to_model(frames, 1)
    expected = np.round(frames @ np.array([0.299, 0.587, 0.114]))
    assert np.abs(to_frames(grey)[..., 0] - expected).max() <= 1


@pytest.mark.parametrize("channels", [1, 3])
def test_save_writes_gif_mp4_and_strip_that_load_back(tmp_path, sprites, channels):
    m = VideoModality(channels=channels)
    x = sprites[channels][1]["x"]
    paths = m.save(x, tmp_path / "clip")
    assert [p.name for p in paths] == ["clip.gif", "clip.mp4", "clip.png"]
    gif, mp4 = m.load(paths[0]), m.load(paths[1])
    assert gif.shape == mp4.shape == (channels, 16, 32, 32)
    # measured: GIF 163 dB grey / exact RGB (the sprites have few colours), MP4 42 dB grey / 30 dB RGB
    assert psnr_db(gif, x) > 60
    assert psnr_db(mp4, x) > (36 if channels == 1 else 27)
    with Image.open(paths[2]) as strip:
        assert strip.size == (16 * 32 + 15 * 2, 32)
    with av.open(str(paths[1])) as container:
        assert container.streams.video[0].frames in (0, 16)
        assert len(list(container.decode(video=0))) == 16


def test_roundtrip_reports_gif_and_mp4_errors(tmp_path, sprites):
    m = VideoModality(channels=1)
    source = m.save(sprites[1][2]["x"], tmp_path / "source")[1]  # an mp4 as the user's file
    metrics = m.roundtrip(source, tmp_path / "again")
    assert set(metrics) == {"model_space_rmse", "psnr_db", "mp4_model_space_rmse", "mp4_psnr_db"}
    assert metrics["psnr_db"] > 60 and metrics["mp4_psnr_db"] > 36  # measured ~206 (exact) and ~48 dB
    assert (tmp_path / "again.gif").is_file() and (tmp_path / "again.mp4").is_file()


def test_load_takes_the_first_clip_and_load_clips_all(tmp_path):
    frames = np.zeros((40, 32, 32, 3), dtype=np.uint8)
    for i in range(40):
        frames[i] = 5 * i
    path = write_mp4(frames, tmp_path / "long.mp4", 8)
    m = VideoModality(channels=1, frames=16)
    first = m.load(path)
    assert first.shape == (1, 16, 32, 32)
    clips = m.load_clips(path)
    assert len(clips) == 2 and torch.allclose(clips[0], first)
    level = lambda x: float(x[:, 0].mean().add(1).mul(127.5))  # noqa: E731
    assert level(clips[1]) == pytest.approx(80, abs=3)  # frame 16
    assert len(m.load_clips(path, max_clips=1)) == 1
    short = m.load(write_mp4(frames[:5], tmp_path / "short.mp4", 8))
    assert torch.equal(short[:, 5:], short[:, 4:5].expand(-1, 11, -1, -1))  # padded with its last frame


def test_a_still_image_loads_as_a_clip_of_identical_frames(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "first.png")
    m = VideoModality(channels=3, frames=8, size=32)
    clip = m.load(tmp_path / "first.png")
    assert clip.shape == (3, 8, 32, 32)
    assert torch.equal(clip, clip[:, :1].expand(-1, 8, -1, -1))
    assert float(m.envelope(clip[None]).abs().max()) == 0.0


def test_bad_files_and_bad_items_raise_media_errors(tmp_path):
    m = VideoModality()
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    for path in (tmp_path / "broken.jpg", tmp_path / "nothing.webm"):
        with pytest.raises(MediaError, match=str(path.name)):
            m.load(path)
    with pytest.raises(MediaError, match="expected"):
        m.save(torch.zeros(1, 4, 8, 8), tmp_path / "wrong")


@pytest.mark.parametrize("channels", [1, 3])
def test_render_and_save_grid(tmp_path, sprites, channels):
    m = VideoModality(channels=channels)
    batch = torch.stack([sprites[channels][i]["x"] for i in range(5)])
    video, picture = m.render(batch)
    assert isinstance(video, Rendered) and video.kind == "video" and video.rate == 8
    assert video.data.shape == (5, 16, 3, 32, 32) and video.data.dtype == np.uint8
    assert np.array_equal(video.data[2, :, 0], to_frames(batch[2])[..., 0])
    assert picture.kind == "image" and picture.data.dtype == np.uint8
    assert picture.data.shape == (5 * 32 + 4 * 2, 16 * 32 + 15 * 2, 3)
    paths = m.save_grid(batch, tmp_path / "grid")
    assert [p.name for p in paths] == ["grid.gif", "grid.mp4", "grid.png"]
    with av.open(str(paths[1])) as container:  # 5 clips -> a 3 x 2 grid with 2-pixel gutters
        decoded = list(container.decode(video=0))
    assert len(decoded) == 16 and (decoded[0].height, decoded[0].width) == (2 * 34 + 2, 3 * 34 + 2)
    with Image.open(paths[2]) as strip:
        assert strip.size == (16 * 104 + 15 * 2, 70)


def test_envelope_is_motion_energy(sprites):
    m = VideoModality(channels=1)
    moving = torch.stack([sprites[1][i]["x"] for i in range(4)])
    envelope = m.envelope(moving)
    assert envelope.shape == (4, 16) and (envelope > 0).all()
    assert torch.equal(envelope[:, 0], envelope[:, 1])  # frame 0 repeats frame 1's motion
    manual = (moving[:, :, 5] - moving[:, :, 4]).abs().mean(dim=(1, 2, 3))
    assert torch.allclose(envelope[:, 5], manual)
    still = moving[:, :, :1].expand(-1, -1, 16, -1, -1)
    assert torch.equal(m.envelope(still), torch.zeros(4, 16))
    assert m.envelope(moving[:, :, :1]).shape == (4, 1)


def test_read_notes_name_a_file_that_plays_on_after_the_clip(tmp_path):
    modality = VideoModality(channels=1, frames=16, size=16, fps=8)
    frames = np.random.default_rng(0).integers(0, 255, (80, 16, 16, 3), dtype=np.uint8)
    long = write_mp4(frames, tmp_path / "long.mp4", 8)  # 10 s
    short = write_mp4(frames[:16], tmp_path / "short.mp4", 8)  # the clip itself
    Image.fromarray(frames[0]).save(tmp_path / "still.png")
    assert modality.read_notes(long) == [
        "it is 10.00 s long and the model sees a 2.00 s clip of it (its first 16 frames at 8 fps); the rest is not "
        "used: cut the part you want to a file of its own"]
    assert modality.read_notes(short) == [] and modality.read_notes(tmp_path / "still.png") == []
    assert modality.read_notes(tmp_path / "missing.mp4") == []  # load() refuses it, not a note
