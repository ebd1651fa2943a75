"""Reading, conditioning and writing audio files, with one-line :class:`MediaError` messages.

Waves are float32 ``[channels, samples]`` in ``[-1, 1]``. :func:`read_audio` reads any bit
depth, sample rate and channel count that libsndfile (WAV, FLAC, OGG, AIFF, MP3, ...) or, as
a fallback, audioread can decode, converts the channels and resamples with soxr. Every
unusable file raises :class:`~diffusionkit.modality.MediaError` whose message is one line
naming the file and the problem, e.g. ``cannot read audio 'x.wav': file is silent (peak 0)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from diffusionkit.modality import MediaError, check_file, limit_error

from .mp3_headers import mp3_declares_length
from .wav_headers import truncation

#: file name suffixes (lower case, with dot) that :func:`read_audio` is meant to read.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")

#: a wave whose absolute peak is below this is treated as silence.
SILENCE_PEAK = 1e-5
#: a clip to be levelled whose peak is below this (dBFS) is near-silent: levelling would raise its
#: noise floor into a sound (the drum-kit reader drops such samples too: ``OneShotOptions.silence_db``)
NEAR_SILENT_DB = -60.0

NORMALIZE_MODES = ("peak", "loudness", "none")

#: sample rates outside this range (Hz) are a broken header, not sound.
RATE_RANGE = (1000, 768_000)
#: a file of 0 frames but more bytes than this holds data its header does not count (a WAV header is 44)
_UNFINALISED_BYTES = 1024
#: a file shorter than this (in seconds) holds no usable sound.
MIN_SECONDS = 0.005
#: how much of a file :func:`load_clip` reads at most to find the sound after leading silence.
DEFAULT_MAX_SECONDS = 30.0

_READABLE = "WAV, FLAC, OGG/Vorbis, AIFF and MP3"
_PREROLL_S = 0.005  # kept before the detected start by trim_leading_silence
_TRIM_WINDOW_S = 0.005  # RMS window of trim_leading_silence
_GATE_FRAME = 256  # samples per frame of the loudness gate in normalize
_GATE_DB = -50.0  # frames this far below the peak are silence for the loudness measure
_LIMIT_PEAK = 0.99  # the loudness mode never lets the peak exceed this
_BLOCK_FRAMES = 65536  # frames decoded at a time (channels are mixed block by block)
_MARGIN_S, _MARGIN_FRAMES = 0.01, 64  # read past a crop so the resampler sees what follows it


def _fail(path: Path, reason: str, verb: str = "read") -> MediaError:
    return MediaError(f"cannot {verb} audio '{path}': {reason}")


def _check_path(path: Path) -> None:
    """Raise MediaError for a path that cannot hold audio at all (missing, a folder, a named
    pipe or device, 0 bytes), without opening it."""
    check_file(path, "audio")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _refuse_malformed(path: Path, exc: BaseException) -> None:
    """A file of a format libsndfile knows whose contents break it (a truncated OGG...) is corrupt,
    not of an unknown format: say so (other readers would only fail less clearly)."""
    if "malformed" in str(exc):
        kind = path.suffix.lstrip(".").upper() or "audio"
        raise _fail(path, f"corrupt or truncated {kind} file (libsndfile: supported format, malformed file); "
                          "copy or export it again") from exc


def _unreadable(path: Path) -> MediaError:
    """The MediaError for a file neither soundfile nor audioread could decode."""
    return _fail(
        path,
        f"not an audio file in a readable format (readable: {_READABLE}); "
        "convert it, e.g. `ffmpeg -i in.xyz out.wav`",
    )


@dataclass(frozen=True)
class _Decoded:
    """The first part of a file (or all of it), its channels already converted."""

    wave: np.ndarray  # float32 [channels, frames]
    rate: int
    source_channels: int
    source_peak: float  # absolute peak before the channels were converted
    non_finite: int  # NaN or Inf samples
    whole: bool  # True when nothing of the file was left unread


#: a decoder may stop this much before the header's length (encoder padding, estimated lengths)
_SHORTFALL_FRACTION, _SHORTFALL_S = 0.1, 0.05


def _frames_for(seconds: float | None, rate: int) -> int | None:
    """Source frames that cover ``seconds`` at ``rate``, plus the resampler's margin."""
    if seconds is None:
        return None
    return math.ceil(seconds * rate) + max(_MARGIN_FRAMES, math.ceil(_MARGIN_S * rate))


def _decoded(blocks: list[np.ndarray], rate: int, channels: int, path: Path, whole: bool) -> _Decoded:
    """A :class:`_Decoded` from ``[file channels, frames]`` blocks, converted one block at a time."""
    have = blocks[0].shape[0] if blocks else 1
    peak = max((float(np.abs(b).max(initial=0.0)) for b in blocks), default=0.0)
    bad = sum(int(b.size - np.count_nonzero(np.isfinite(b))) for b in blocks)
    mixed = [_convert_channels(b, channels, path) for b in blocks]
    wave = np.concatenate(mixed, axis=1) if mixed else np.zeros((channels, 0), np.float32)
    return _Decoded(wave, rate, have, peak, bad, whole)


def _blocks(f: sf.SoundFile, count: int) -> Iterator[np.ndarray]:
    """Up to ``count`` frames of an open file as ``[channels, frames]`` blocks; a block ends early
    where the decoder does (``SoundFile.blocks`` would pad such a block with stale memory)."""
    while count > 0:
        block = f.read(min(_BLOCK_FRAMES, count), dtype="float32", always_2d=True)
        if len(block) == 0:
            return
        count -= len(block)
        yield np.ascontiguousarray(block.T)


def _read_soundfile(path: Path, seconds: float | None, channels: int) -> _Decoded:
    """The first ``seconds`` (all of the file for None) through libsndfile, block by block."""
    with sf.SoundFile(path) as f:
        rate = int(f.samplerate)
        _check_rate(path, rate)
        wanted = _frames_for(seconds, rate)
        count = f.frames if wanted is None else min(f.frames, wanted)
        try:
            blocks = list(_blocks(f, count))
        except (sf.SoundFileError, RuntimeError) as exc:  # the header was fine, the data is not
            reason = _first_line(exc).removeprefix("Error : ").rstrip(".")
            raise _fail(path, f"corrupt or truncated {f.format} file ({reason}); copy or export it again") from exc
        if f.format != "MP3" or mp3_declares_length(path):  # else the frame count is a guess from the size
            _check_decoded_all(path, f.format, sum(b.shape[1] for b in blocks), count, rate)
        return _decoded(blocks, rate, channels, path, whole=count >= f.frames)


def _check_decoded_all(path: Path, kind: str, got: int, promised: int, rate: int) -> None:
    """Refuse a file whose decoder stops well before its header's length (an MP3 cut off while
    copied: mpg123 decodes what is there and stops); a few frames short is an encoder's padding."""
    if promised - got > max(_SHORTFALL_FRACTION * promised, _SHORTFALL_S * rate):
        raise _fail(path, f"corrupt or truncated {kind} file: its header promises {_duration(promised / rate)} of "
                          f"sound but it ends after {_duration(got / rate)}; it was cut off while being copied or "
                          "written: copy or export it again")


def _duration(seconds: float) -> str:
    """``1.5 s``, ``93 ms``: a short human reading of a duration."""
    return f"{seconds:.3g} s" if seconds >= 0.1 else f"{1e3 * seconds:.3g} ms"


def _read_audioread(path: Path, seconds: float | None, channels: int) -> _Decoded:
    """The first ``seconds`` through librosa's audioread backends (formats libsndfile lacks)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "PySoundFile failed. Trying audioread instead."
        rate = int(librosa.get_samplerate(path))
        _check_rate(path, rate)
        wanted = _frames_for(seconds, rate)
        data, _ = librosa.load(path, sr=None, mono=False, duration=None if wanted is None else wanted / rate)
    data = np.asarray(data, dtype=np.float32)
    data = data[None] if data.ndim == 1 else data
    return _decoded([data], rate, channels, path, whole=wanted is None or data.shape[1] < wanted)


def _decode(path: Path, seconds: float | None, channels: int) -> _Decoded:
    """Decode the first ``seconds`` of a file (all of it for None), or raise MediaError."""
    try:
        return _read_soundfile(path, seconds, channels)
    except MediaError:
        raise
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as sf_exc:
        _refuse_malformed(path, sf_exc)
        first = sf_exc
    # libsndfile cannot read it: audioread (ffmpeg, gstreamer, ... where installed, or the
    # standard-library wave/aifc/sunau readers) may still decode it.
    try:
        return _read_audioread(path, seconds, channels)
    except MediaError:
        raise
    except Exception:  # noqa: BLE001 - audioread backends raise anything
        raise _unreadable(path) from first


def _check_rate(path: Path, rate: int) -> None:
    """Refuse a sample rate no sound is recorded at: the header is wrong (and resampling from
    it would blow a small file up to gigabytes)."""
    low, high = RATE_RANGE
    if not low <= rate <= high:
        raise _fail(path, f"its header gives a sample rate of {rate} Hz, outside {low}-{high} Hz, so it is "
                          "broken; export the file again at its real rate")


def _check_complete(path: Path) -> None:
    """Refuse a WAV or AIFF file whose sample data ends before its header says."""
    cut = truncation(path)
    if cut is None:
        return
    try:
        rate = int(sf.info(path).samplerate)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError):
        rate = 0
    promised, held = cut.seconds(cut.promised_bytes, rate), cut.seconds(cut.held_bytes, rate)
    raise _fail(path, f"truncated {cut.container}: its header promises {cut.promised_bytes} bytes of sound "
                      f"({_duration(promised)}) but the file holds {cut.held_bytes} ({_duration(held)}); it was "
                      "cut off while being copied or written: copy or export it again")


def _check_samples(path: Path, decoded: _Decoded) -> None:
    """Refuse empty, too short, non-finite and silent audio (silence only where the whole file
    was read: the caller judges a part)."""
    frames = decoded.wave.shape[1]
    if frames == 0:
        size = path.stat().st_size if path.is_file() else 0
        if size > _UNFINALISED_BYTES:
            raise _fail(path, f"its header says it holds no sound (0 frames), yet the file is {size} bytes: it was "
                              "never finalised (a recording or export cut off); open it in an audio editor and "
                              "export it again")
        raise _fail(path, "file is empty (0 frames)")
    needed = math.ceil(MIN_SECONDS * decoded.rate)
    if decoded.whole and frames < needed:
        raise _fail(path, f"too short: {frames} sample{'s' if frames > 1 else ''} ({_duration(frames / decoded.rate)} "
                          f"at {decoded.rate} Hz); a sound needs at least {needed} ({_duration(MIN_SECONDS)})")
    if decoded.non_finite:
        raise _fail(path, f"file contains {decoded.non_finite} non-finite samples (NaN or Inf); re-export it")
    if decoded.source_peak < SILENCE_PEAK:
        if decoded.whole:
            raise _fail(path, f"file is silent (peak {decoded.source_peak:.3g})")
        return
    peak = float(np.abs(decoded.wave).max())
    if peak < SILENCE_PEAK:  # only mixing to mono can lose level
        raise _fail(
            path,
            f"file is silent after mixing its {decoded.source_channels} channels to mono (peak {peak:.3g}): "
            "they cancel out (opposite polarity); invert one channel or read it as stereo",
        )


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


def read_audio(path: str | Path, sample_rate: int, channels: int = 1, seconds: float | None = None) -> np.ndarray:
    """Read an audio file as float32 ``[channels, samples]`` at ``sample_rate``.

    Reads with soundfile (libsndfile: WAV, FLAC, OGG, AIFF, MP3, ... at any bit depth),
    falling back to ``librosa.load`` (audioread) for formats libsndfile lacks. Channels:
    ``channels == 1`` mixes all file channels by their mean; a mono file is duplicated to
    more channels; a file with more channels than wanted keeps the first ones. The wave is
    resampled with soxr (``soxr_hq``) when the file's rate differs. With ``seconds``, only
    the first ``seconds`` of the file are decoded and resampled (a crop before resampling, so
    memory follows what is kept, not the file), and a silent start is left to the caller.

    Raises:
        MediaError: missing, not a regular file, empty, truncated (WAV/AIFF), at a sample rate
            outside :data:`RATE_RANGE`, shorter than :data:`MIN_SECONDS`, undecodable,
            non-finite (NaN/Inf) or silent audio (peak below ``1e-5``, also after mixing to mono).
        ValueError: ``sample_rate`` or ``channels`` below 1.
    """
    if sample_rate < 1 or channels < 1:
        raise ValueError(f"sample_rate and channels must be >= 1, got {sample_rate} and {channels}")
    path = Path(path)
    _check_path(path)
    _check_complete(path)
    decoded = _decode(path, seconds, channels)
    _check_samples(path, decoded)
    wave = resample(decoded.wave, decoded.rate, sample_rate)
    if seconds is not None:
        wave = wave[..., : math.ceil(seconds * sample_rate)]
    return np.ascontiguousarray(wave, dtype=np.float32)


def file_sample_rate(path: str | Path) -> int:
    """The sample rate stored in an audio file (to write outputs at the input's rate)."""
    path = Path(path)
    _check_path(path)
    try:
        return int(sf.info(path).samplerate)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as sf_exc:
        _refuse_malformed(path, sf_exc)
        first = sf_exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(librosa.get_samplerate(path))
    except Exception:  # noqa: BLE001 - audioread backends raise anything
        raise _unreadable(path) from first


#: WAV subtype written for each ``output_bits`` (32: 32-bit float, what DAWs record into)
OUTPUT_SUBTYPES: dict[int, str] = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}
_SUBTYPE_BITS = {"PCM_24": 24, "PCM_32": 32, "FLOAT": 32, "DOUBLE": 32}  # any other: 16


def file_seconds(path: str | Path) -> float | None:
    """An audio file's duration by its header (None where it cannot be read so)."""
    try:
        info = sf.info(Path(path))
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError):
        return None
    return float(info.frames) / info.samplerate if info.samplerate > 0 and info.frames > 0 else None


def file_bits(path: str | Path) -> int:
    """The bit depth of :data:`OUTPUT_SUBTYPES` closest to an audio file's own: 24 for 24-bit PCM,
    32 for 32-bit PCM or float, 16 for the rest (16-bit or less, and compressed formats)."""
    try:
        return _SUBTYPE_BITS.get(sf.info(Path(path)).subtype, 16)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError):
        return 16  # read through audioread (MP3...): no stored depth


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
    wave: np.ndarray, mode: str = "peak", peak: float = 0.9, loudness_db: float = -20.0,
    max_gain_db: float | None = None,
) -> np.ndarray:
    """Scale a wave's level.

    Modes: ``"peak"`` scales the absolute peak to ``peak``; ``"loudness"`` scales the RMS
    of the non-silent part (see :func:`loudness_dbfs`) to ``loudness_db`` dBFS, then lowers
    the gain if needed so the peak is at most 0.99 (no clipping); ``"none"`` returns the
    wave unchanged. A silent wave is returned unchanged by every mode; ``max_gain_db`` caps how
    far a quiet one is raised.
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
    if max_gain_db is not None:
        gain = min(gain, 10.0 ** (max_gain_db / 20.0))
    return (wave * gain).astype(wave.dtype if np.issubdtype(wave.dtype, np.floating) else np.float32)


def below_full_scale(wave: np.ndarray) -> np.ndarray:
    """``wave`` scaled down, if its peak is over 0.99, to a peak of 0.99: a written file is never
    clipped (clipping a transient is audible distortion; a gain change is not)."""
    wave = np.asarray(wave)
    if not np.issubdtype(wave.dtype, np.floating):
        wave = wave.astype(np.float32)
    current = float(np.abs(wave).max()) if wave.size else 0.0
    return (wave * (_LIMIT_PEAK / current)).astype(wave.dtype) if current > _LIMIT_PEAK else wave


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
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> np.ndarray:
    """Read a file as a training/inference clip: float32 ``[channels, num_samples]``.

    Read the part of the file the clip needs (:func:`read_audio`; with ``trim_silence`` up to
    ``max_seconds``, where the sound must start) -> optionally trim leading silence -> crop or
    zero-pad the end -> normalise (after cropping, so the level is that of the part kept).

    Raises:
        MediaError: as :func:`read_audio`, or when the kept part is silent.
    """
    clip_seconds = num_samples / sample_rate
    wave = read_audio(path, sample_rate, channels, seconds=max(max_seconds, clip_seconds) if trim_silence
                      else clip_seconds)
    searched = wave.shape[-1] >= round(max_seconds * sample_rate)
    if trim_silence:
        wave = trim_leading_silence(wave, sample_rate)
    wave = fit_length(wave, num_samples)
    peak = float(np.abs(wave).max())
    if peak < SILENCE_PEAK:
        if trim_silence and searched:
            raise limit_error(path, "audio", f"no sound in its first {max_seconds:g} s, as far as trim_silence "
                              "looks", "max_seconds", f"{max_seconds:g}", "seconds")
        what = "after trimming leading silence, the first" if trim_silence else "the first"
        hint = "" if trim_silence else "; trim leading silence (trim_silence=True) or use a longer clip"
        raise _fail(Path(path), f"{what} {clip_seconds:.3g} s are silent (peak {peak:.3g}){hint}")
    level = 20 * math.log10(peak)
    if normalize_mode != "none" and level < NEAR_SILENT_DB:
        fix = "record or export it louder" if trim_silence else \
            "trim its leading silence (trim_silence=True), or record or export it louder"
        raise _fail(Path(path), f"near-silent: the part read peaks at {level:.0f} dBFS, and levelling it would raise "
                                f"its noise by {-level:.0f} dB; a sound needs a peak above {NEAR_SILENT_DB:.0f} dBFS: "
                                f"{fix} (or normalize=none to take it as it is)")
    return np.ascontiguousarray(normalize(wave, normalize_mode), dtype=np.float32)


def resample(wave: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """``wave`` (``[..., samples]``) from one sample rate to another with soxr (high quality)."""
    if from_rate == to_rate:
        return wave
    return librosa.resample(wave, orig_sr=from_rate, target_sr=to_rate, res_type="soxr_hq", axis=-1)
