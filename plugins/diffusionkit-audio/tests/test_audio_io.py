"""audio_io: reading every format/rate/channel layout, conditioning, writing and file errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from diffusionkit_audio.audio_io import (
    AUDIO_EXTENSIONS,
    file_sample_rate,
    fit_length,
    load_clip,
    normalize,
    read_audio,
    trim_leading_silence,
    write_wav,
)

from diffusionkit.modality import MediaError

SR = 16000
UNREADABLE = (
    "not an audio file in a readable format (readable: WAV, FLAC, OGG/Vorbis, AIFF and MP3); "
    "convert it, e.g. `ffmpeg -i in.xyz out.wav`"
)


def sine(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    """``amp * sin(2 pi freq t)`` as float64 ``[samples]``."""
    return amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)


def peak_hz(x: np.ndarray, rate: int) -> float:
    """The frequency of the largest FFT bin of a mono wave (Hann window)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[np.argmax(spectrum)])


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64)))))


def write(tmp_path, name: str, frames: np.ndarray, rate: int, **kwargs):
    """Write ``frames`` (``[samples]`` or ``[samples, channels]``) with soundfile; return the path."""
    path = tmp_path / name
    sf.write(path, frames, rate, **kwargs)
    return path


# --- formats, rates, channels -----------------------------------------------------------------

FORMATS = [
    ("pcm16.wav", {"subtype": "PCM_16"}, 2e-3),
    ("pcm24.wav", {"subtype": "PCM_24"}, 2e-3),
    ("float.wav", {"subtype": "FLOAT"}, 2e-3),
    ("x.flac", {"subtype": "PCM_24"}, 2e-3),
    ("x.aiff", {"subtype": "PCM_16"}, 2e-3),
    ("x.aif", {"format": "AIFF", "subtype": "PCM_16"}, 2e-3),
    ("x.ogg", {"subtype": "VORBIS"}, None),
    ("x.mp3", {"subtype": "MPEG_LAYER_III"}, None),
]


def test_extensions():
    assert AUDIO_EXTENSIONS == (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")


@pytest.mark.parametrize(("name", "kwargs", "tol"), FORMATS, ids=[f[0] for f in FORMATS])
def test_each_format_reads_resampled_to_16k(tmp_path, name, kwargs, tol):
    """A 0.5 s 1 kHz sine at 44.1 kHz reads at 16 kHz: 8000 samples, still 1 kHz, same level."""
    path = write(tmp_path, name, sine(1000, 0.5, 44100), 44100, **kwargs)
    x = read_audio(path, SR)
    assert x.shape == (1, 8000) and x.dtype == np.float32
    assert peak_hz(x[0], SR) == pytest.approx(1000, abs=2)  # 2 Hz bins
    middle = slice(800, 7200)
    assert float(np.abs(x[0, middle]).max()) == pytest.approx(0.5, abs=0.03)
    if tol is not None:  # lossless: sample-accurate against the ideal 16 kHz sine
        np.testing.assert_allclose(x[0, middle], sine(1000, 0.5, SR)[middle], atol=tol)
    assert file_sample_rate(path) == 44100


def test_8k_mono_upsamples_to_16k_and_keeps_its_frequency(tmp_path):
    path = write(tmp_path, "phone.wav", sine(440, 1.0, 8000, 0.3), 8000, subtype="PCM_16")
    x = read_audio(path, SR)
    assert x.shape == (1, 16000)
    assert peak_hz(x[0], SR) == pytest.approx(440, abs=1)
    np.testing.assert_allclose(x[0, 1600:-1600], sine(440, 1.0, SR, 0.3)[1600:-1600], atol=2e-3)
    assert file_sample_rate(path) == 8000


def test_same_rate_is_not_resampled(tmp_path):
    s = sine(440, 0.25, SR).astype(np.float32)
    x = read_audio(write(tmp_path, "f.wav", s, SR, subtype="FLOAT"), SR)
    np.testing.assert_array_equal(x[0], s)


def test_stereo_44k_keeps_both_channels_for_channels_2(tmp_path):
    frames = np.stack([sine(1000, 0.5, 44100), sine(3000, 0.5, 44100, 0.25)], axis=1)
    x = read_audio(write(tmp_path, "st.wav", frames, 44100, subtype="PCM_24"), SR, channels=2)
    assert x.shape == (2, 8000)
    assert peak_hz(x[0], SR) == pytest.approx(1000, abs=2)
    assert peak_hz(x[1], SR) == pytest.approx(3000, abs=2)
    assert float(np.abs(x[1, 800:-800]).max()) == pytest.approx(0.25, abs=0.01)


def test_identical_stereo_channels_mix_to_the_signal(tmp_path):
    s = sine(440, 0.25, SR)
    x = read_audio(write(tmp_path, "same.wav", np.stack([s, s], 1), SR, subtype="FLOAT"), SR)
    assert x.shape == (1, 4000)
    np.testing.assert_allclose(x[0], s, atol=1e-6)


def test_mono_mix_is_the_channel_mean(tmp_path):
    a, b = sine(440, 0.25, SR, 0.6), sine(660, 0.25, SR, 0.2)
    x = read_audio(write(tmp_path, "mix.wav", np.stack([a, b], 1), SR, subtype="FLOAT"), SR)
    np.testing.assert_allclose(x[0], (a + b) / 2, atol=1e-6)


def test_opposite_polarity_stereo_is_silent_after_mixing(tmp_path):
    s = sine(440, 0.25, SR)
    path = write(tmp_path, "phase.wav", np.stack([s, -s], 1), SR, subtype="FLOAT")
    with pytest.raises(MediaError) as info:
        read_audio(path, SR)
    assert str(info.value) == (
        f"cannot read audio '{path}': file is silent after mixing its 2 channels to mono (peak 0): "
        "they cancel out (opposite polarity); invert one channel or read it as stereo"
    )
    assert read_audio(path, SR, channels=2).shape == (2, 4000)  # as stereo it is fine


def test_mono_file_is_duplicated_for_two_channels(tmp_path):
    s = sine(440, 0.25, SR)
    x = read_audio(write(tmp_path, "m.flac", s, SR), SR, channels=2)
    assert x.shape == (2, 4000)
    np.testing.assert_array_equal(x[0], x[1])


def test_surround_file_keeps_first_two_channels(tmp_path):
    chans = [sine(f, 0.25, SR, 0.1 * (i + 1)) for i, f in enumerate((300, 500, 700, 900))]
    x = read_audio(write(tmp_path, "quad.wav", np.stack(chans, 1), SR, subtype="FLOAT"), SR, channels=2)
    np.testing.assert_allclose(x, np.stack(chans[:2]), atol=1e-6)
    mono = read_audio(tmp_path / "quad.wav", SR)
    np.testing.assert_allclose(mono[0], np.mean(chans, axis=0), atol=1e-6)


def test_more_channels_than_the_file_has_is_an_error(tmp_path):
    s = sine(440, 0.1, SR)
    path = write(tmp_path, "st.wav", np.stack([s, s], 1), SR)
    with pytest.raises(MediaError) as info:
        read_audio(path, SR, channels=4)
    assert str(info.value) == f"cannot read audio '{path}': has 2 channels, cannot make 4 of them"


# --- file errors ------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(MediaError) as info:
        read_audio(path, SR)
    assert str(info.value) == f"cannot read audio '{path}': no such file"
    with pytest.raises(MediaError, match="no such file$"):
        file_sample_rate(path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(MediaError) as info:
        read_audio(path, SR)
    assert str(info.value) == f"cannot read audio '{path}': the file is empty (0 bytes)"


def test_wav_with_zero_frames(tmp_path):
    path = write(tmp_path, "noframes.wav", np.zeros((0, 1)), SR)
    with pytest.raises(MediaError) as info:
        read_audio(path, SR)
    assert str(info.value) == f"cannot read audio '{path}': file is empty (0 frames)"


def test_nan_and_inf_samples(tmp_path):
    s = sine(440, 0.1, SR)
    s[[10, 20]] = np.nan
    s[30] = np.inf
    path = write(tmp_path, "nan.wav", s, SR, subtype="FLOAT")
    with pytest.raises(MediaError) as info:
        read_audio(path, SR)
    assert str(info.value) == (
        f"cannot read audio '{path}': file contains 3 non-finite samples (NaN or Inf); re-export it"
    )


def test_silent_file(tmp_path):
    path = write(tmp_path, "silent.wav", np.zeros(SR), SR)
    with pytest.raises(MediaError) as info:
        read_audio(path, SR)
    assert str(info.value) == f"cannot read audio '{path}': file is silent (peak 0)"


def test_near_silent_file_reports_its_peak(tmp_path):
    path = write(tmp_path, "hiss.wav", np.full(100, 4e-6), SR, subtype="FLOAT")
    with pytest.raises(MediaError, match=r"file is silent \(peak 4e-06\)$"):
        read_audio(path, SR)


def test_a_truncated_ogg_is_called_corrupt_not_an_unknown_format(tmp_path):
    whole = write(tmp_path, "whole.ogg", sine(440, 1.0, SR), SR)
    path = tmp_path / "cut.ogg"
    path.write_bytes(whole.read_bytes()[:3000])
    with pytest.raises(MediaError) as info:
        read_audio(path, SR)
    assert str(info.value) == (f"cannot read audio '{path}': corrupt or truncated OGG file (libsndfile: supported "
                               "format, malformed file); copy or export it again")


def test_a_wav_never_finalised_is_named_so_not_empty(tmp_path):
    path = write(tmp_path, "take.wav", sine(440, 1.0, SR), SR, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"data")
    data[at + 4:at + 8] = (0).to_bytes(4, "little")  # a recorder that died before writing the sizes
    data[4:8] = (36).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(MediaError, match=r"its header says it holds no sound \(0 frames\), yet the file is \d+ "
                                         r"bytes: it was never finalised"):
        read_audio(path, SR)


def test_garbage_bytes_with_wav_suffix(tmp_path):
    path = tmp_path / "fake.wav"
    path.write_bytes(b"this is not audio at all\n" * 40)
    with pytest.raises(MediaError) as info:
        read_audio(path, SR)
    assert str(info.value) == f"cannot read audio '{path}': {UNREADABLE}"
    assert "\n" not in str(info.value)
    assert isinstance(info.value.__cause__, sf.SoundFileError)  # chained, not swallowed
    with pytest.raises(MediaError) as info:
        file_sample_rate(path)
    assert str(info.value) == f"cannot read audio '{path}': {UNREADABLE}"


def test_directory(tmp_path):
    with pytest.raises(MediaError) as info:
        read_audio(tmp_path, SR)
    assert str(info.value) == f"cannot read audio '{tmp_path}': it is a directory"


def test_bad_arguments_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="sample_rate and channels must be >= 1"):
        read_audio(tmp_path / "x.wav", 0)


# --- trimming, length, level ------------------------------------------------------------------


def test_trim_removes_leading_silence_keeping_5ms(tmp_path):
    tone = sine(440, 0.5, SR)
    wave = np.concatenate([np.zeros(int(0.3 * SR)), tone])[None].astype(np.float32)
    out = trim_leading_silence(wave, SR)
    removed = (wave.shape[1] - out.shape[1]) / SR
    assert removed == pytest.approx(0.3, abs=0.01)
    assert removed == pytest.approx(0.295, abs=0.002)  # ~5 ms of pre-roll kept
    np.testing.assert_array_equal(out[0, -tone.size :], tone.astype(np.float32))


def test_trim_ignores_noise_below_threshold():
    rng = np.random.default_rng(0)
    lead = rng.standard_normal(int(0.3 * SR)) * 10 ** (-75 / 20)  # -75 dB re 0.5 peak: below -50
    wave = np.concatenate([lead, sine(440, 0.5, SR)])
    out = trim_leading_silence(wave, SR)  # 1-D works too
    assert out.ndim == 1
    assert (wave.size - out.size) / SR == pytest.approx(0.295, abs=0.003)


def test_trim_keeps_a_wave_that_starts_at_once():
    wave = sine(440, 0.2, SR)[None]
    assert trim_leading_silence(wave, SR).shape == wave.shape


def test_trim_of_silence_is_a_no_op():
    wave = np.zeros((2, 100), np.float32)
    assert trim_leading_silence(wave, SR).shape == (2, 100)


def test_fit_length_crops_and_pads_at_the_end():
    wave = np.arange(1, 11, dtype=np.float32).reshape(2, 5)
    np.testing.assert_array_equal(fit_length(wave, 3), [[1, 2, 3], [6, 7, 8]])
    np.testing.assert_array_equal(fit_length(wave, 7), [[1, 2, 3, 4, 5, 0, 0], [6, 7, 8, 9, 10, 0, 0]])
    assert fit_length(wave, 5).shape == (2, 5)
    assert fit_length(np.ones(4), 6).tolist() == [1, 1, 1, 1, 0, 0]
    with pytest.raises(ValueError):
        fit_length(wave, 0)


def test_peak_normalisation():
    wave = sine(440, 0.1, SR, 0.3)[None].astype(np.float32)
    out = normalize(wave)
    assert float(np.abs(out).max()) == pytest.approx(0.9, abs=1e-6)
    assert float(np.abs(normalize(wave, "peak", peak=0.5)).max()) == pytest.approx(0.5, abs=1e-6)
    assert out.dtype == np.float32


def test_loudness_normalisation_measures_only_the_sound():
    """0.5 s tone + 0.7 s near-silence (-100 dBFS hiss): the tone's RMS becomes -20 dBFS."""
    tone = sine(440, 0.5, SR, 0.05)
    hiss = np.random.default_rng(1).standard_normal(int(0.7 * SR)) * 1e-5
    wave = np.concatenate([tone, hiss])[None]
    out = normalize(wave, "loudness", loudness_db=-20.0)
    assert rms_db(out[0, : tone.size]) == pytest.approx(-20.0, abs=0.15)
    louder = normalize(wave, "loudness", loudness_db=-14.0)
    assert rms_db(louder[0, : tone.size]) == pytest.approx(-14.0, abs=0.15)


def test_loudness_normalisation_never_clips():
    """A quiet sine with one spike: reaching -12 dBFS would push the spike past 0.99."""
    wave = sine(440, 0.5, SR, 0.05)
    wave[4000] = 0.8
    out = normalize(wave[None], "loudness", loudness_db=-12.0)
    assert float(np.abs(out).max()) == pytest.approx(0.99, abs=1e-6)
    assert rms_db(out[0]) < -12.0


def test_normalize_none_and_unknown_mode():
    wave = sine(440, 0.1, SR, 0.3)[None]
    np.testing.assert_array_equal(normalize(wave, "none"), wave)
    with pytest.raises(ValueError) as info:
        normalize(wave, "rms")
    assert str(info.value) == "unknown normalize mode 'rms'; expected one of peak, loudness, none"


# --- writing ----------------------------------------------------------------------------------


def test_write_wav_mono_clips_and_creates_folders(tmp_path):
    wave = np.array([0.0, 0.5, -0.25, 1.7, -3.0], np.float32)
    path = write_wav(tmp_path / "a" / "b" / "out.wav", wave, 22050)
    assert path == tmp_path / "a" / "b" / "out.wav"
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    data, _ = sf.read(path, dtype="float32")
    np.testing.assert_allclose(data, [0.0, 0.5, -0.25, 1.0, -1.0], atol=1 / 32768)


def test_write_wav_clips_float_files_too(tmp_path):
    path = write_wav(tmp_path / "f.wav", np.array([[0.5, 2.0, -1.5]]), SR, subtype="FLOAT")
    np.testing.assert_array_equal(sf.read(path, dtype="float32")[0], [0.5, 1.0, -1.0])


def test_write_wav_stereo_float_round_trips(tmp_path):
    wave = np.stack([sine(440, 0.1, SR), sine(660, 0.1, SR, 0.2)]).astype(np.float32)
    path = write_wav(tmp_path / "st.wav", wave, SR, subtype="FLOAT")
    np.testing.assert_array_equal(read_audio(path, SR, channels=2), wave)
    assert sf.info(path).subtype == "FLOAT"


def test_write_wav_refuses_other_suffixes_and_nan(tmp_path):
    with pytest.raises(MediaError) as info:
        write_wav(tmp_path / "x.flac", np.zeros(10), SR)
    assert str(info.value) == (
        f"cannot write audio '{tmp_path / 'x.flac'}': write_wav writes WAV files; give the path a .wav suffix"
    )
    with pytest.raises(MediaError, match="the wave contains NaN or Inf samples$"):
        write_wav(tmp_path / "x.wav", np.array([0.0, np.nan]), SR)


# --- load_clip --------------------------------------------------------------------------------


def test_load_clip_normalises_after_cropping(tmp_path):
    """Quiet first half, loud second half; a crop to the quiet half peaks at 0.9 itself."""
    wave = np.concatenate([sine(440, 0.5, 44100, 0.1), sine(440, 0.5, 44100, 0.8)])
    path = write(tmp_path, "two.wav", wave, 44100, subtype="FLOAT")
    clip = load_clip(path, SR, num_samples=int(0.4 * SR))
    assert clip.shape == (1, 6400) and clip.dtype == np.float32
    assert float(np.abs(clip).max()) == pytest.approx(0.9, abs=1e-5)


def test_load_clip_pads_short_files_and_keeps_stereo(tmp_path):
    s = sine(440, 0.1, SR)
    clip = load_clip(write(tmp_path, "short.wav", np.stack([s, s / 2], 1), SR), SR, 3200, channels=2)
    assert clip.shape == (2, 3200)
    assert np.all(clip[:, 1600:] == 0)
    assert float(np.abs(clip).max()) == pytest.approx(0.9, abs=1e-4)


def test_load_clip_silent_start_and_trimming(tmp_path):
    wave = np.concatenate([np.zeros(int(0.3 * SR)), sine(440, 0.5, SR)])
    path = write(tmp_path, "late.wav", wave, SR)
    with pytest.raises(MediaError) as info:
        load_clip(path, SR, int(0.2 * SR))
    assert str(info.value) == (
        f"cannot read audio '{path}': the first 0.2 s are silent (peak 0); "
        "trim leading silence (trim_silence=True) or use a longer clip"
    )
    clip = load_clip(path, SR, int(0.2 * SR), trim_silence=True, normalize_mode="none")
    assert clip.shape == (1, 3200)
    # ~5 ms of pre-roll, then the tone at its original level
    assert float(np.abs(clip[0, :70]).max()) == 0.0
    assert float(np.abs(clip[0, 100:]).max()) == pytest.approx(0.5, abs=1e-3)


def test_load_clip_refuses_a_near_silent_clip_it_would_level_and_keeps_a_quiet_sound(tmp_path):
    t = np.arange(SR) / SR
    hit = np.sin(2 * np.pi * 200 * t) * np.exp(-t / 0.05)
    path = write(tmp_path, "whisper.wav", 10 ** (-85 / 20) * hit, SR, subtype="PCM_24")
    with pytest.raises(MediaError) as info:
        load_clip(path, SR, SR // 2)
    assert str(info.value) == (f"cannot read audio '{path}': near-silent: the part read peaks at -85 dBFS, and levelling "
                               "it would raise its noise by 85 dB; a sound needs a peak above -60 dBFS: trim its "
                               "leading silence (trim_silence=True), or record or export it louder (or normalize=none "
                               "to take it as it is)")
    assert np.abs(load_clip(path, SR, SR // 2, normalize_mode="none")).max() < 1e-4  # taken as it is when not levelled
    quiet = load_clip(write(tmp_path, "quiet.wav", 10 ** (-50 / 20) * hit, SR, subtype="PCM_24"), SR, SR // 2)
    assert np.abs(quiet).max() == pytest.approx(0.9, abs=1e-3)  # -50 dBFS is a quiet sound, levelled as usual


def test_load_clip_loudness_mode(tmp_path):
    path = write(tmp_path, "t.wav", sine(440, 0.5, SR, 0.5), SR, subtype="FLOAT")
    clip = load_clip(path, SR, SR // 4, normalize_mode="loudness")
    assert rms_db(clip[0]) == pytest.approx(-20.0, abs=0.05)
