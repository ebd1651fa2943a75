"""Odd audio files, generated here: truncated, a broken sample rate, one sample long, a named
pipe, a huge file. Each is one line naming the file, what is wrong and the fix, and reading is
bounded by the clip the model needs, not by the file."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from diffusionkit_audio import audio_io
from diffusionkit_audio.audio_io import file_sample_rate, load_clip, read_audio
from diffusionkit_audio.modality import AudioModality
from diffusionkit_audio.wav_headers import truncation

from diffusionkit.cli import main
from diffusionkit.modality import MediaError

SR = 16000
CUT = ("it was cut off while being copied or written: copy or export it again")


def tone(path: Path, rate: int = 44100, seconds: float = 1.0, **kwargs) -> Path:
    """A 440 Hz tone at half scale, 16-bit unless ``subtype`` says otherwise."""
    t = np.arange(round(rate * seconds)) / rate
    sf.write(path, 0.5 * np.sin(2 * np.pi * 440 * t), rate, **{"subtype": "PCM_16", **kwargs})
    return path


def cut(path: Path, keep: int) -> Path:
    """``path`` with only its first ``keep`` bytes (the header still promises the rest)."""
    path.write_bytes(path.read_bytes()[:keep])
    return path


def with_rate(path: Path, rate: int) -> Path:
    """A WAV whose header claims another sample rate (bytes 24-27) for the same samples."""
    data = bytearray(path.read_bytes())
    data[24:28] = struct.pack("<I", rate)
    path.write_bytes(bytes(data))
    return path


def one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(MediaError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- truncated files -----------------------------------------------------------------------------


def test_a_truncated_wav_is_refused_by_every_reader(tmp_path):
    """The probe's case: a header promising 1 s with 4 frames left read as a click."""
    path = cut(tone(tmp_path / "kick.wav"), 44 + 8)
    expected = (f"cannot read audio '{path}': truncated WAV: its header promises 88200 bytes of sound (1 s) "
                f"but the file holds 8 (0.0907 ms); {CUT}")
    assert one_line_error(read_audio, path, SR) == expected
    assert one_line_error(load_clip, path, SR, 16128) == expected
    modality = AudioModality()
    assert one_line_error(modality.load, path) == expected
    assert one_line_error(modality.roundtrip, path, tmp_path / "out") == expected
    assert not list(tmp_path.glob("out*"))


def test_a_wav_cut_in_its_middle_is_refused_even_if_the_clip_is_there(tmp_path):
    path = cut(tone(tmp_path / "long.wav", seconds=3.0), 44 + 2 * 44100 * 2)
    assert "truncated WAV: its header promises 264600 bytes of sound (3 s) but the file holds 176400 (2 s)" in \
        one_line_error(AudioModality().load, path)


def test_a_truncated_aiff_is_refused(tmp_path):
    path = tone(tmp_path / "x.aiff", format="AIFF")
    size = path.stat().st_size
    cut(path, size - 44100)
    assert one_line_error(read_audio, path, SR).startswith(
        f"cannot read audio '{path}': truncated AIFF: its header promises 88200 bytes of sound (1 s) but the file "
        "holds 44100 (0.5 s)")


def test_complete_and_streamed_wavs_are_not_called_truncated(tmp_path):
    """A chunk after the samples, or a data size left unknown by a streaming writer, is fine."""
    extra = tone(tmp_path / "extra.wav")
    extra.write_bytes(extra.read_bytes() + b"LIST" + struct.pack("<I", 4) + b"INFO")
    streamed = tone(tmp_path / "streamed.wav")
    data = bytearray(streamed.read_bytes())
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)
    streamed.write_bytes(bytes(data))
    for path in (extra, streamed):
        assert truncation(path) is None
        assert read_audio(path, SR).shape == (1, SR)


def test_a_truncated_flac_names_the_damage(tmp_path):
    path = tone(tmp_path / "x.flac", seconds=2.0, subtype="PCM_24")
    cut(path, path.stat().st_size // 2)
    assert one_line_error(read_audio, path, SR) == (
        f"cannot read audio '{path}': corrupt or truncated FLAC file (flac decoder lost sync); copy or export it again")


# --- sample rates and the crop before resampling -------------------------------------------------


@pytest.mark.parametrize("rate", [1, 999, 1_000_000])
def test_a_rate_no_sound_is_recorded_at_is_a_broken_header(tmp_path, rate):
    """The probe's 88 KB WAV at 1 Hz took `vary` to 6.3 GB: refused before a sample is decoded."""
    path = with_rate(tone(tmp_path / "x.wav"), rate)
    assert one_line_error(AudioModality().load, path) == (
        f"cannot read audio '{path}': its header gives a sample rate of {rate} Hz, outside 1000-768000 Hz, so it "
        "is broken; export the file again at its real rate")


def _resampled_frames(monkeypatch) -> list[int]:
    """The frame counts :func:`audio_io.resample` is given from now on."""
    seen: list[int] = []
    original = audio_io.resample

    def spy(wave, from_rate, to_rate):
        seen.append(wave.shape[-1])
        return original(wave, from_rate, to_rate)

    monkeypatch.setattr(audio_io, "resample", spy)
    return seen


@pytest.mark.parametrize("rate", [1000, 8000, 96000])
def test_only_the_clip_is_decoded_and_resampled(tmp_path, monkeypatch, rate):
    """A 10-minute file (at the lowest rate allowed, blown up 16x by resampling to 16 kHz)
    costs what its first clip costs."""
    path = tone(tmp_path / "long.wav", rate, seconds=600.0 if rate <= 8000 else 30.0)
    seen = _resampled_frames(monkeypatch)
    modality = AudioModality()
    x = modality.load(path)
    assert x.shape == modality.shape
    clip_frames = modality.num_samples * rate / SR
    assert len(seen) == 1 and seen[0] <= clip_frames + max(64, 0.01 * rate) + 1


def test_trim_silence_looks_as_far_as_max_seconds(tmp_path, monkeypatch):
    wave = np.concatenate([np.zeros(8000 * 40), 0.5 * np.sin(np.arange(8000) * 0.3)])
    path = tmp_path / "late.wav"
    sf.write(path, wave, 8000, subtype="PCM_16")
    seen = _resampled_frames(monkeypatch)
    assert one_line_error(AudioModality(trim_silence=True).load, path) == (
        f"cannot read audio '{path}': no sound in its first 30 s, as far as trim_silence looks (limit: "
        "max_seconds=30); if the file is right, raise the limit (modality.max_seconds=<seconds> for train, "
        "max_seconds=<seconds> for other commands)")
    assert seen[0] <= 30 * 8000 + 100
    x = AudioModality(trim_silence=True, max_seconds=60).load(path)
    assert float(x.max()) > float(x.min())


# --- too short, not a file -----------------------------------------------------------------------


def test_a_one_sample_wav_is_too_short_not_silent(tmp_path):
    path = tmp_path / "one.wav"
    sf.write(path, np.array([0.5]), 44100, subtype="PCM_16")
    assert one_line_error(AudioModality().load, path) == (
        f"cannot read audio '{path}': too short: 1 sample (0.0227 ms at 44100 Hz); a sound needs at least 221 (5 ms)")


def test_a_named_pipe_is_refused_unopened(named_pipe):
    path = named_pipe("pipe.wav")
    expected = f"cannot read audio '{path}': it is a named pipe (FIFO), not a regular file; copy its data into a " \
               "regular file"
    assert one_line_error(AudioModality().load, path) == expected
    assert one_line_error(file_sample_rate, path) == expected


# --- through the command line: exit code 2, one line, no traceback ------------------------------


def error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


@pytest.fixture
def odd_wavs(tmp_path) -> dict[str, Path]:
    return {"truncated": cut(tone(tmp_path / "cut.wav"), 52),
            "1 Hz": with_rate(tone(tmp_path / "slow.wav"), 1)}


def test_vary_and_roundtrip_refuse_odd_wavs_in_one_line(tmp_path, capsys, odd_wavs):
    for what, path in odd_wavs.items():
        for argv in (["vary", "ckpt=drums_starter", f"input={path}", "n=1", f"out={tmp_path / 'v'}"],
                     ["roundtrip", "modality=audio", f"input={path}", f"out={tmp_path / 'r'}"]):
            line = error_line(capsys, argv)
            assert line.startswith(f"diffusionkit {argv[0]}: error: cannot read audio '{path}': "), (what, line)


@pytest.mark.slow
def test_folder_training_refuses_a_class_of_odd_files(tmp_path, capsys, odd_wavs):
    root = tmp_path / "samples"
    (root / "snare").mkdir(parents=True)
    for i, path in enumerate(odd_wavs.values()):
        path.rename(root / "snare" / f"{i}.wav")
    (root / "kick").mkdir()
    tone(root / "kick" / "a.wav")
    err = error_line(capsys, ["train", "modality=audio", "data=folder", f"data.dataset.root={root}",
                              "trainer.max_steps=1", f"out={tmp_path / 'run'}"])
    assert err == (f"diffusionkit train: error: data folder '{root}': no usable file in class 'snare', which the "
                   "model would never see; fix or replace the skipped files, or move the class out of the data folder")


@pytest.mark.parametrize("options, message", [
    ({"output_rate": 150_000_000}, "output_rate must be null, a rate from 1000 to 384000 Hz or 'input'"),
    ({"codec_options": {"n_fft": 10**9, "hop_length": 100}}, "n_fft must be at most 65536"),
    ({"codec_options": {"n_mels": 100_000}}, "n_mels must be from 1 to 1024"),
    ({"clip_seconds": 1e6}, "clip_seconds must be more than 0 and at most 60"),
])
def test_sizes_a_config_cannot_afford_are_refused_before_allocating(options, message):
    """A bundle's config is data: a rate or FFT size of 10**8 would allocate gigabytes."""
    with pytest.raises(ValueError, match=message):
        AudioModality(**options)


@pytest.mark.parametrize("options, message", [
    ({"normalize": "foo"}, "unknown normalize mode 'foo'; choose normalize= one of: peak, loudness, none"),
    ({"normalize": None}, "unknown normalize mode None"),
    ({"frame_multiple": 0}, "frame_multiple must be a whole number of at least 1"),
    ({"frame_multiple": "abc"}, "frame_multiple must be a whole number of at least 1 (the frame count is rounded up "
                                "to a multiple of it), got 'abc'"),
    ({"codec_options": {"bogus": 1}}, "the mel codec takes no option 'bogus' (codec_options.bogus); it takes: n_fft, "),
    ({"codec": "stft", "codec_options": {"n_mels": 64}}, "the stft codec takes no option 'n_mels'"),
])
def test_options_are_checked_when_the_modality_is_built_not_when_a_file_is_written(options, message):
    """``generate normalize=foo`` used to sample first and fail with a traceback when writing."""
    with pytest.raises(ValueError) as err:
        AudioModality(**options)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_bad_media_option_is_one_line_before_any_sampling(tmp_path, capsys):
    err = error_line(capsys, ["generate", "ckpt=drums_starter", "n=1", "steps=2", "normalize=foo",
                              f"out={tmp_path / 'out'}"])
    assert err == ("diffusionkit generate: error: AudioModality: unknown normalize mode 'foo'; choose normalize= one "
                   "of: peak, loudness, none")
    assert not (tmp_path / "out").exists()
