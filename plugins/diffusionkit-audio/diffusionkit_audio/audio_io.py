"""Reading, conditioning and writing audio files, with one-line :class:`MediaError` messages.

Waves are float32 ``[channels, samples]`` in ``[-1, 1]``. :func:`read_audio` reads any bit
depth, sample rate and channel count that libsndfile (WAV, FLAC, OGG, AIFF, MP3, ...) or, as
a fallback, audioread can decode, converts the channels and resamples with soxr. Every
unusable file raises :class:`~diffusionkit.modality.MediaError` whose message is one line
naming the file and the problem, e.g. ``cannot read audio 'x.wav': file is silent (peak 0)``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from diffusionkit.modality import MediaError

#: file name suffixes (lower case, with dot) that :func:`read_audio` is meant to read.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")

#: a wave whose absolute peak is below this is treated as silence.
SILENCE_PEAK = 1e-5

NORMALIZE_MODES = ("peak", "loudness", "none")

_READABLE = "WAV, FLAC, OGG/Vorbis, AIFF and MP3"
_PREROLL_S = 0.005  # kept before the detected start by trim_leading_silence
_TRIM_WINDOW_S = 0.005  # RMS window of trim_leading_silence
_GATE_FRAME = 256  # samples per frame of the loudness gate in normalize
_GATE_DB = -50.0  # frames this far below the peak are silence for the loudness measure
_LIMIT_PEAK = 0.99  # the loudness mode never lets the peak exceed this


def _fail(path: Path, reason: str, verb: str = "read") -> MediaError:
    return MediaError(f"cannot {verb} audio '{path}': {reason}")


def _check_path(path: Path) -> None:
    """Raise MediaError for a path that cannot hold audio at all (missing, a folder, 0 bytes)."""
    if not path.exists():
        raise _fail(path, "no such file")
    if path.is_dir():
        raise _fail(path, "it is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise _fail(path, "file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise _fail(path, "permission denied")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unreadable(path: Path) -> MediaError:
    """The MediaError for a file neither soundfile nor audioread could decode."""
    return _fail(
        path,
        f"not an audio file in a readable format (readable: {_READABLE}); "
        "convert it, e.g. `ffmpeg -i in.xyz out.wav`",
    )


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode a file to float32 ``[channels, frames]`` and its sample rate, or raise MediaError."""
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), int(rate)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as sf_exc:
        first = sf_exc
    # libsndfile cannot read it: audioread (ffmpeg, gstreamer, ... where installed, or the
    # standard-library wave/aifc/sunau readers) may still decode it.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "PySoundFile failed. Trying audioread instead."
            data, rate = librosa.load(path, sr=None, mono=False)
    except Exception:  # noqa: BLE001 - audioread backends raise anything
        raise _unreadable(path) from first
    data = np.asarray(data, dtype=np.float32)
    return (data[None] if data.ndim == 1 else data), int(rate)


def _convert_channels(data: np.ndarray, channels: int, path: Path) -> np.ndarray:
    have = data.shape[0]
    if channels == have:
        return data
    if channels == 1:
        return data.mean(axis=0, keepdims=True)
    if have == 1:
        return np.repeat(data, channels, axis=0)
    if have > channels:
        return data[:channels]
    raise _fail(path, f"has {have} channels, cannot make {channels} of them")


def read_audio(path: str | Path, sample_rate: int, channels: int = 1) -> np.ndarray:
    """Read an audio file as float32 ``[channels, samples]`` at ``sample_rate``.

    Reads with soundfile (libsndfile: WAV, FLAC, OGG, AIFF, MP3, ... at any bit depth),
    falling back to ``librosa.load`` (audioread) for formats libsndfile lacks. Channels:
    ``channels == 1`` mixes all file channels by their mean; a mono file is duplicated to
    more channels; a file with more channels than wanted keeps the first ones. The wave is
    resampled with soxr (``soxr_hq``) when the file's rate differs.

    Raises:
        MediaError: missing, empty, undecodable, non-finite (NaN/Inf) or silent audio
            (peak below ``1e-5``, also after mixing to mono).
        ValueError: ``sample_rate`` or ``channels`` below 1.
    """
    if sample_rate < 1 or channels < 1:
        raise ValueError(f"sample_rate and channels must be >= 1, got {sample_rate} and {channels}")
    path = Path(path)
    _check_path(path)
    data, rate = _decode(path)
    if data.shape[1] == 0:
        raise _fail(path, "file is empty (0 frames)")
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise _fail(path, f"file contains {bad} non-finite samples (NaN or Inf); re-export it")
    file_peak = float(np.abs(data).max())
    if file_peak < SILENCE_PEAK:
        raise _fail(path, f"file is silent (peak {file_peak:.3g})")
    mixed = _convert_channels(data, channels, path)
    peak = float(np.abs(mixed).max())
    if peak < SILENCE_PEAK:  # only mixing to mono can lose level
        raise _fail(
            path,
            f"file is silent after mixing its {data.shape[0]} channels to mono (peak {peak:.3g}): "
            "they cancel out (opposite polarity); invert one channel or read it as stereo",
        )
    data = mixed
    data = resample(data, rate, sample_rate)
    return np.ascontiguousarray(data, dtype=np.float32)


def file_sample_rate(path: str | Path) -> int:
    """The sample rate stored in an audio file (to write outputs at the input's rate)."""
    path = Path(path)
    _check_path(path)
    try:
        return int(sf.info(path).samplerate)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as sf_exc:
        first = sf_exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(librosa.get_samplerate(path))
    except Exception:  # noqa: BLE001 - audioread backends raise anything
        raise _unreadable(path) from first


def _as_2d(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave)
    if wave.ndim == 1:
        return wave[None]
    if wave.ndim != 2:
        raise ValueError(f"expected a wave [samples] or [channels, samples], got shape {wave.shape}")
    return wave


def trim_leading_silence(wave: np.ndarray, sample_rate: int, threshold_db: float = -50.0) -> np.ndarray:
    """Drop the silence before the first sound, keeping ~5 ms of pre-roll.

    The start is the first sample where the RMS over the preceding 5 ms (all channels)
    exceeds ``threshold_db`` relative to the wave's absolute peak. Works on ``[samples]``
    and ``[channels, samples]``; a silent wave is returned unchanged.
    """
    x = np.asarray(wave)
    frames = _as_2d(x)
    peak = float(np.abs(frames).max()) if frames.size else 0.0
    if peak == 0.0 or not np.isfinite(peak):
        return x
    win = max(1, round(_TRIM_WINDOW_S * sample_rate))
    energy = np.concatenate([[0.0], np.cumsum(np.mean(frames.astype(np.float64) ** 2, axis=0))])
    # rms[i]: RMS over the (up to) `win` samples ending at sample i
    idx = np.arange(frames.shape[1])
    lo = np.maximum(idx + 1 - win, 0)
    rms = np.sqrt(np.maximum(energy[idx + 1] - energy[lo], 0.0) / win)
    above = np.flatnonzero(rms > peak * 10.0 ** (threshold_db / 20.0))
    if above.size == 0:
        return x
    start = max(0, int(above[0]) - round(_PREROLL_S * sample_rate))
    return x[..., start:]


def fit_length(wave: np.ndarray, num_samples: int) -> np.ndarray:
    """Crop the end or zero-pad at the end to ``num_samples`` (last axis)."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    wave = np.asarray(wave)
    have = wave.shape[-1]
    if have >= num_samples:
        return wave[..., :num_samples]
    pad = [(0, 0)] * (wave.ndim - 1) + [(0, num_samples - have)]
    return np.pad(wave, pad)


def loudness_dbfs(wave: np.ndarray) -> float:
    """RMS level in dBFS over the non-silent part (``20 log10 rms``; a full-scale sine is -3).

    Frames of 256 samples whose RMS is more than 50 dB below the peak are left out, so
    silence around a sound does not lower its measured level. ``-inf`` for a silent wave.
    """
    frames = _as_2d(wave).astype(np.float64)
    peak = float(np.abs(frames).max()) if frames.size else 0.0
    if peak == 0.0:
        return float("-inf")
    power = np.mean(frames**2, axis=0)
    n = -(-power.size // _GATE_FRAME) * _GATE_FRAME
    blocks = np.pad(power, (0, n - power.size)).reshape(-1, _GATE_FRAME)
    counts = np.full(blocks.shape[0], _GATE_FRAME)
    counts[-1] = power.size - (blocks.shape[0] - 1) * _GATE_FRAME
    block_ms = blocks.sum(axis=1) / counts
    keep = block_ms > (peak * 10.0 ** (_GATE_DB / 20.0)) ** 2
    if not keep.any():
        keep[:] = True
    rms = np.sqrt(blocks[keep].sum() / counts[keep].sum())
    return float(20.0 * np.log10(rms)) if rms > 0 else float("-inf")


def normalize(
    wave: np.ndarray, mode: str = "peak", peak: float = 0.9, loudness_db: float = -20.0
) -> np.ndarray:
    """Scale a wave's level.

    Modes: ``"peak"`` scales the absolute peak to ``peak``; ``"loudness"`` scales the RMS
    of the non-silent part (see :func:`loudness_dbfs`) to ``loudness_db`` dBFS, then lowers
    the gain if needed so the peak is at most 0.99 (no clipping); ``"none"`` returns the
    wave unchanged. A silent wave is returned unchanged by every mode.
    """
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"unknown normalize mode {mode!r}; expected one of {', '.join(NORMALIZE_MODES)}")
    wave = np.asarray(wave)
    if mode == "none" or wave.size == 0:
        return wave
    current = float(np.abs(wave).max())
    if current == 0.0 or not np.isfinite(current):
        return wave
    if mode == "peak":
        gain = peak / current
    else:
        level = loudness_dbfs(wave)
        gain = 10.0 ** ((loudness_db - level) / 20.0)
        gain = min(gain, _LIMIT_PEAK / current)
    return (wave * gain).astype(wave.dtype if np.issubdtype(wave.dtype, np.floating) else np.float32)


def write_wav(path: str | Path, wave: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write ``[samples]`` or ``[channels, samples]`` as a WAV file (parents created).

    Samples are clipped to ``[-1, 1]``. ``subtype`` is a soundfile WAV subtype
    (``PCM_16``, ``PCM_24``, ``PCM_32``, ``FLOAT``, ...). Returns the path.
    """
    path = Path(path)
    if path.suffix.lower() not in (".wav", ".wave"):
        raise _fail(path, "write_wav writes WAV files; give the path a .wav suffix", "write")
    data = _as_2d(np.asarray(wave, dtype=np.float32))
    if data.shape[1] == 0:
        raise _fail(path, "the wave is empty (0 samples)", "write")
    if not np.isfinite(data).all():
        raise _fail(path, "the wave contains NaN or Inf samples", "write")
    if not sf.check_format("WAV", subtype):
        raise _fail(path, f"subtype {subtype!r} is not a WAV subtype (try PCM_16, PCM_24 or FLOAT)", "write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.clip(data, -1.0, 1.0).T, int(sample_rate), subtype=subtype, format="WAV")
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _first_line(exc)
        raise _fail(path, reason, "write") from exc
    return path


def load_clip(
    path: str | Path,
    sample_rate: int,
    num_samples: int,
    channels: int = 1,
    trim_silence: bool = False,
    normalize_mode: str = "peak",
) -> np.ndarray:
    """Read a file as a training/inference clip: float32 ``[channels, num_samples]``.

    Read (:func:`read_audio`) -> optionally trim leading silence -> crop or zero-pad the end
    -> normalise (after cropping, so the level is that of the part kept).

    Raises:
        MediaError: as :func:`read_audio`, or when the kept part is silent.
    """
    wave = read_audio(path, sample_rate, channels)
    if trim_silence:
        wave = trim_leading_silence(wave, sample_rate)
    wave = fit_length(wave, num_samples)
    peak = float(np.abs(wave).max())
    if peak < SILENCE_PEAK:
        what = "after trimming leading silence, the first" if trim_silence else "the first"
        hint = "" if trim_silence else "; trim leading silence (trim_silence=True) or use a longer clip"
        seconds = num_samples / sample_rate
        raise _fail(Path(path), f"{what} {seconds:.3g} s are silent (peak {peak:.3g}){hint}")
    return np.ascontiguousarray(normalize(wave, normalize_mode), dtype=np.float32)


def resample(wave: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """``wave`` (``[..., samples]``) from one sample rate to another with soxr (high quality)."""
    if from_rate == to_rate:
        return wave
    return librosa.resample(wave, orig_sr=from_rate, target_sr=to_rate, res_type="soxr_hq", axis=-1)
