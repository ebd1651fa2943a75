"""Video files: the MP4 and GIF writers, timestamp resampling, frame fitting, clips and bad files."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import av
import numpy as np
import pytest
from diffusionkit_video.video_frames import cut_clips, fit_frames, frame_strip, tile
from diffusionkit_video.video_read import read_frames, read_still
from diffusionkit_video.video_write import gif_delays_ms, write_gif, write_mp4
from PIL import Image, ImageSequence

from diffusionkit.modality import MediaError


def counting_frames(count: int, height: int = 32, width: int = 48, channels: int = 3) -> np.ndarray:
    """Frame ``i`` is a flat grey of level ``10 * i`` with a white square at column ``i``: every
    frame differs (Pillow merges identical GIF frames) and its index survives lossy coding."""
    frames = np.zeros((count, height, width, channels), dtype=np.uint8)
    for i in range(count):
        frames[i] = 10 * i
        frames[i, 4:10, i % (width - 6):i % (width - 6) + 6] = 255
    return frames


def frame_index(frame: np.ndarray) -> int:
    """The index of a :func:`counting_frames` frame, from its grey level (bottom rows)."""
    return int(round(float(frame[-8:].mean()) / 10))


def decode_with_pyav(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


# ---------------------------------------------------------------------------------- writers
@pytest.mark.parametrize("channels", [1, 3])
def test_written_mp4_and_gif_decode_with_pyav_to_the_right_frame_count_and_size(tmp_path, channels):
    frames = counting_frames(20, 32, 48, channels)
    for path in (write_mp4(frames, tmp_path / "clip.mp4", 8), write_gif(frames, tmp_path / "clip.gif", 8)):
        decoded = decode_with_pyav(path)
        assert len(decoded) == 20, path
        assert all(f.shape == (32, 48, 3) for f in decoded), path
        assert [frame_index(f) for f in decoded] == list(range(20)), path


def test_mp4_is_h264_yuv420p_at_the_requested_rate(tmp_path):
    path = write_mp4(counting_frames(12), tmp_path / "sub" / "clip.mp4", 12.5)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name in ("h264", "mpeg4")
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(12.5)
        times = [frame.time for frame in container.decode(stream)]
    assert np.allclose(np.diff(times), 1 / 12.5, atol=1e-3)


def test_mp4_is_close_to_its_frames(tmp_path):
    frames = counting_frames(8)
    decoded = np.stack(decode_with_pyav(write_mp4(frames, tmp_path / "clip.mp4", 8)))
    mse = np.mean((decoded.astype(float) - frames) ** 2)
    assert 10 * np.log10(255**2 / mse) > 35  # measured ~45 dB at CRF 17


def test_odd_sizes_are_padded_to_even_by_edge_replication(tmp_path):
    frames = counting_frames(4, 31, 47)
    decoded = decode_with_pyav(write_mp4(frames, tmp_path / "odd.mp4", 8))
    assert len(decoded) == 4 and decoded[0].shape == (32, 48, 3)
    # the added row repeats the last one (up to coding error)
    assert np.abs(decoded[2][-1].astype(int) - decoded[2][-2]).mean() < 4


def test_gif_loops_holds_per_frame_delays_and_is_exact_for_greyscale(tmp_path):
    frames = counting_frames(10, channels=1)
    path = write_gif(frames[..., 0], tmp_path / "grey.gif", 8)
    with Image.open(path) as img:
        assert img.info["loop"] == 0
        pil_frames = [(np.asarray(f.convert("L")), f.info["duration"]) for f in ImageSequence.Iterator(img)]
    assert len(pil_frames) == 10
    assert [d for _, d in pil_frames] == gif_delays_ms(10, 8) == [120, 130, 120, 130, 120, 130, 120, 130, 120, 130]
    assert np.array_equal(np.stack([f for f, _ in pil_frames]), frames[..., 0])


def test_gif_delays_never_start_a_frame_late():
    for fps in (5, 8, 12, 24, 25, 30, 7.5):
        starts = np.cumsum([0, *gif_delays_ms(50, fps)])[:-1]
        ideal = np.arange(50) * 1000 / fps
        assert np.all(starts <= ideal + 1e-9) and np.all(starts > ideal - 10)


def test_identical_frames_merge_in_a_gif_but_read_back_at_full_length(tmp_path):
    still = np.full((6, 16, 16, 1), 90, dtype=np.uint8)
    path = write_gif(still, tmp_path / "still.gif", 8)
    assert len(decode_with_pyav(path)) == 1  # Pillow merged them, summing the delays
    assert read_frames(path, 8).shape == (6, 16, 16, 3)


def test_identical_frames_longer_than_a_gif_holds_are_one_line_naming_the_fix(tmp_path):
    still = np.full((200, 8, 8, 1), 90, dtype=np.uint8)  # 200 s at 0.3 fps > 655.35 s in one picture
    with pytest.raises(MediaError) as info:
        write_gif(still, tmp_path / "still.gif", 0.3)
    assert str(info.value) == (f"cannot write video '{tmp_path / 'still.gif'}': a GIF shows one picture for at most "
                               "655.35 s, and 200 frames at 0.3 fps hold identical ones in a row that last longer; "
                               "give fewer frames= or a higher fps=")


def test_a_frame_rate_no_gif_can_show_is_refused_by_the_modality():
    from diffusionkit_video.modality import VideoModality

    with pytest.raises(ValueError, match=r"^VideoModality: fps must be at least 0.0015 \(a GIF shows a frame for at "
                                         r"most 655.35 s\), got 0.001$"):
        VideoModality(fps=0.001)
    assert VideoModality(fps=0.002).fps == 0.002


def test_frame_strip_and_tile_layouts():
    frames = counting_frames(5, 10, 12)
    strip = frame_strip(frames)
    assert strip.shape == (10, 5 * 12 + 4 * 2, 3) and strip.dtype == np.uint8
    assert (strip[:, 12:14] == 255).all() and np.array_equal(strip[:, 14:26], frames[1])
    assert frame_strip(frames[..., :1]).shape == (10, 68, 3)
    grid = tile(np.stack([frames] * 5))  # 5 clips -> 3 per row, 2 rows
    assert grid.shape == (5, 2 * 10 + 3 * 2, 3 * 14 + 2, 3)
    grey = frames[..., :1]
    assert np.array_equal(tile(grey[None]), np.repeat(grey, 3, axis=-1))  # one clip: as it is, in RGB
    assert tile(np.stack([frames] * 2), nrow=5).shape == (5, 10 + 2 * 2, 2 * 14 + 2, 3)  # never more columns than clips


# ---------------------------------------------------------------------------------- reading
@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webm", ".mkv"])
def test_24_fps_read_at_8_fps_keeps_every_third_frame_by_timestamp(tmp_path, suffix):
    frames = counting_frames(24)
    path = tmp_path / f"clip{suffix}"
    if suffix == ".gif":
        write_gif(frames, path, 24)
    elif suffix == ".mp4":
        write_mp4(frames, path, 24)
    else:  # other containers through PyAV directly
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libvpx" if suffix == ".webm" else "mpeg4", rate=24)
            stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
            stream.bit_rate = 2_000_000
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    assert [frame_index(f) for f in read_frames(path, 24)] == list(range(24))
    at_8 = read_frames(path, 8)
    assert at_8.shape == (8, 32, 48, 3) and at_8.dtype == np.uint8
    assert [frame_index(f) for f in at_8] == list(range(0, 24, 3))
    assert [frame_index(f) for f in read_frames(path, 48)] == [i // 2 for i in range(48)]


def test_uneven_gif_delays_are_followed(tmp_path):
    """Delays 250, 125, 125 ms shown at 8 fps: frame 0 twice, then 1, then 2."""
    frames = [Image.fromarray(f[..., 0]) for f in counting_frames(3, channels=1)]
    path = tmp_path / "uneven.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=[250, 130, 120], loop=0)
    assert [frame_index(f) for f in read_frames(path, 8)] == [0, 0, 1, 2]


def test_read_frames_fits_on_the_fly_and_stops_early(tmp_path):
    path = write_mp4(counting_frames(24, 32, 48), tmp_path / "clip.mp4", 24)
    frames = read_frames(path, 8, size=(16, 16), max_frames=3)
    assert frames.shape == (3, 16, 16, 3)
    assert [frame_index(f) for f in frames] == [0, 3, 6]


def test_a_display_matrix_rotation_is_applied(tmp_path):
    """A phone's portrait video: landscape frames with a 90 degree track matrix (ffprobe: rotation
    -90) are shown turned clockwise, so the top-left corner goes to the top right."""
    frames = np.zeros((3, 16, 32, 3), dtype=np.uint8)
    frames[:, :4, :4] = 255
    data = bytearray(write_mp4(frames, tmp_path / "flat.mp4", 8).read_bytes())
    matrix = data.find(b"tkhd") + 44  # version 0 tkhd: the 3x3 matrix follows 40 bytes of fields
    assert struct.unpack(">9i", data[matrix:matrix + 36]) == (1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30)
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)
    (tmp_path / "portrait.mp4").write_bytes(bytes(data))
    upright = read_frames(tmp_path / "portrait.mp4", 8)
    assert upright.shape == (3, 32, 16, 3)
    assert upright[0, :4, -4:].mean() > 200 and upright[0, :4, :4].mean() < 50


def test_fit_frames_centre_crops_and_resizes():
    frames = np.zeros((3, 40, 80, 3), dtype=np.uint8)
    frames[:, :, :20] = 255  # the left quarter is cropped away by a square centre crop
    fitted = fit_frames(frames, (16, 16))
    assert fitted.shape == (3, 16, 16, 3) and fitted.dtype == np.uint8
    assert fitted[:, :, 1:].max() <= 2 and fitted.mean() < 2  # Lanczos rings a little at the crop edge
    assert fit_frames(frames, (20, 10)).shape == (3, 20, 10, 3)


def test_cut_clips_counts_drops_the_remainder_and_pads_short_videos():
    frames = np.arange(37)[:, None, None, None] * np.ones((1, 2, 2, 3), dtype=np.uint8)
    clips = cut_clips(frames, 16)
    assert len(clips) == 2 and all(c.shape == (16, 2, 2, 3) for c in clips)
    assert clips[1][0, 0, 0, 0] == 16
    assert len(cut_clips(frames, 16, max_clips=1)) == 1
    short = cut_clips(frames[:5], 16)
    assert len(short) == 1 and short[0].shape == (16, 2, 2, 3)
    assert list(short[0][:, 0, 0, 0]) == [0, 1, 2, 3, 4] + [4] * 11


def test_still_image_reads_as_one_fitted_frame(tmp_path):
    Image.new("RGBA", (40, 20), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    frame = read_still(tmp_path / "clear.png", (8, 8))
    assert frame.shape == (1, 8, 8, 3) and (frame == 255).all()  # transparency on white


# ---------------------------------------------------------------------------------- bad files
def one_line_error(path: Path, call=None) -> MediaError:
    with pytest.raises(MediaError) as info:
        (call or (lambda p: read_frames(p, 8)))(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    return info.value


def test_missing_empty_directory_and_garbage_files_raise_one_line_media_errors(tmp_path):
    assert "no such file" in str(one_line_error(tmp_path / "missing.mp4"))
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert "empty" in str(one_line_error(tmp_path / "empty.mp4"))
    (tmp_path / "folder.mp4").mkdir()
    assert "directory" in str(one_line_error(tmp_path / "folder.mp4"))
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    err = one_line_error(tmp_path / "garbage.mp4")
    assert isinstance(err.__cause__, av.FFmpegError)
    (tmp_path / "text.gif").write_text("not a picture at all\n" * 20)
    err = one_line_error(tmp_path / "text.gif")
    assert err.__cause__ is not None
    assert "no such file" in str(one_line_error(tmp_path / "missing.png", read_still))


def test_truncated_files_raise_one_line_media_errors(tmp_path):
    gif = write_gif(counting_frames(12), tmp_path / "clip.gif", 8)
    mp4 = write_mp4(counting_frames(12), tmp_path / "clip.mp4", 8)
    data = gif.read_bytes()
    for cut in (len(data) // 2, len(data) // 10, len(data) - 3):
        (tmp_path / "cut.gif").write_bytes(data[:cut])
        assert "trunc" in str(one_line_error(tmp_path / "cut.gif"))
    (tmp_path / "cut.mp4").write_bytes(mp4.read_bytes()[: os.path.getsize(mp4) // 2])
    one_line_error(tmp_path / "cut.mp4")


def test_a_file_without_a_video_stream_is_named(tmp_path):
    path = tmp_path / "sound.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    assert "no video stream" in str(one_line_error(path))
