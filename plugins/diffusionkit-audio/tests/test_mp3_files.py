"""MP3s cut off while copied are refused; whole ones are read, however their length is told
(``diffusionkit_audio.mp3_headers``: a Xing/Info frame count, VBRI, or none but the file size)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from diffusionkit_audio.audio_io import read_audio

from diffusionkit.modality import MediaError


def write(tmp_path, name: str, frames: np.ndarray, **kwargs):
    """``frames`` written at 44.1 kHz with soundfile; the path."""
    path = tmp_path / name
    sf.write(path, frames, 44100, **kwargs)
    return path


def test_an_mp3_cut_off_is_refused_as_truncated_with_both_lengths(tmp_path):
    whole = write(tmp_path, "whole.mp3", 0.5 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100), format="MP3")
    path = tmp_path / "cut.mp3"
    path.write_bytes(whole.read_bytes()[:whole.stat().st_size // 3])
    assert read_audio(whole, 44100).shape[-1] == 44100  # the whole file reads
    with pytest.raises(MediaError) as info:
        read_audio(path, 44100)
    message = str(info.value)
    assert message.startswith(f"cannot read audio '{path}': corrupt or truncated MP3 file: its header promises 1 s "
                              "of sound but it ends after "), message
    assert message.endswith("; it was cut off while being copied or written: copy or export it again")


def vbr_mp3(tmp_path) -> tuple[bytes, int, int]:
    """A 4 s variable-rate MP3 (2 s silence, then noise) as bytes, where its first frame starts
    (after its ID3 tag) and that frame's length: the frame that holds the Xing/Info header."""
    rng = np.random.default_rng(0)
    quiet_then_loud = np.concatenate([np.zeros(2 * 44100), 0.5 * rng.standard_normal(2 * 44100)]).astype(np.float32)
    data = write(tmp_path, "vbr.mp3", quiet_then_loud, format="MP3", bitrate_mode="VARIABLE",
                 compression_level=0.0).read_bytes()
    start = 10 + int.from_bytes(bytes(b & 0x7F for b in data[6:10]), "big") if data[:3] == b"ID3" else 0
    bitrate = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320][data[start + 2] >> 4]
    length = 144000 * bitrate // 44100 + ((data[start + 2] >> 1) & 1)
    assert b"Xing" in data[start:start + length] or b"Info" in data[start:start + length]
    return data, start, length


def test_a_whole_vbr_mp3_without_a_frame_count_is_read_not_called_truncated(tmp_path):
    """Without a frame count a decoder's length is the file size over the first frame's bit
    rate; a variable-rate file that starts quietly is far shorter than that, and whole."""
    data, start, length = vbr_mp3(tmp_path)
    bare = tmp_path / "bare.mp3"  # no Xing frame at all
    bare.write_bytes(data[:start] + data[start + length:])
    at = data.index(b"Xing", start) if b"Xing" in data[start:start + length] else data.index(b"Info", start)
    flags = int.from_bytes(data[at + 4:at + 8], "big")
    countless = tmp_path / "countless.mp3"  # a Xing frame whose frame count is absent (its flag cleared)
    countless.write_bytes(data[:at + 4] + (flags & ~1).to_bytes(4, "big") + data[at + 8:])
    for path in (bare, countless):
        assert sf.info(path).frames > 2 * 4 * 44100  # the guess: more than twice its real length
        assert abs(read_audio(path, 44100).shape[-1] - 4 * 44100) < 44100 // 10


def test_a_cut_mp3_behind_two_id3_tags_is_still_refused(tmp_path):
    data, start, _ = vbr_mp3(tmp_path)
    title = ("Ünïcode " * 40).encode("utf-16")  # a UTF-16 text frame: its BOM holds 0xFF bytes
    frame = b"TIT2" + (len(title) + 1).to_bytes(4, "big") + b"\x00\x00\x01" + title
    tag = b"ID3\x03\x00\x00" + bytes((len(frame) >> (7 * i)) & 0x7F for i in (3, 2, 1, 0)) + frame
    empty = b"ID3\x03\x00\x00\x00\x00\x00\x00"
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(empty + tag + data[:len(data) // 2])  # the 0xFF bytes lie in the second tag
    with pytest.raises(MediaError, match=r"corrupt or truncated MP3 file: its header promises 4 s of sound but it "
                                         r"ends after 2\.\d+ s"):
        read_audio(cut, 44100)
