"""The ``audio`` modality: clips of sound as spectrograms ``[channels, bins, frames]``."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import Tensor

from diffusionkit.media import FileWidgets, Layout, SummaryMethod, Widget
from diffusionkit.modality import MediaError, Modality, Rendered
from diffusionkit.prompt_checks import PromptCheck

from .augment import audio_transforms
from .captions import descriptors, drum_prompt_checks
from .audio_io import (AUDIO_EXTENSIONS, DEFAULT_MAX_SECONDS, NORMALIZE_MODES, OUTPUT_SUBTYPES, below_full_scale,
                       file_bits, file_sample_rate, file_seconds, load_clip, normalize, read_audio, resample,
                       trim_leading_silence, write_wav)
from .codecs import MAX_RATE, build_codec, snr_db
from .midi import write_midi
from .pictures import colourise, picture_grid, write_picture
from .synth_drums import DRUM_CLASSES

#: decoded items an AudioModality remembers, and their most values in all (64 MB of float32; see
#: :meth:`AudioModality.decode`).
DECODES_KEPT, DECODED_VALUES = 64, 1 << 24


def _content_key(item: Tensor) -> str:
    """A digest of an item's shape and values."""
    digest = hashlib.blake2b(item.contiguous().numpy().tobytes(), digest_size=16)
    digest.update(str(tuple(item.shape)).encode())
    return digest.hexdigest()


#: the most a written take is raised by levelling, in dB.
MAX_LEVEL_GAIN_DB = 40.0
#: how much longer than the clip a file may be before :meth:`AudioModality.read_notes` says the rest is unused
CLIP_SLACK_SECONDS = 0.1
#: sound after the clip within this many dB of the clip's peak is worth a note that it is not used
UNUSED_SOUND_DB = 20.0
#: silence between the clips of a grid's audio file, in seconds.
GRID_GAP_SECONDS = 0.25
#: a float32 ``[samples]`` mono clip in [-1, 1] to TensorBoard, at the medium's rate.
SOUND_WRITER = SummaryMethod("add_audio", rate_option="sample_rate", layout=Layout("float32", 1, bounds=(-1.0, 1.0)))
#: a uint8 ``[H, W, C]`` picture (the spectrograms) to TensorBoard.
PICTURE_WRITER = SummaryMethod("add_image", {"dataformats": "HWC"}, layout=Layout("uint8", 3, channel_axis=-1))
#: the studio's upload field and player for sound files, and the spectrogram picture beside the player.
AUDIO_WIDGETS = FileWidgets(
    "audio", upload=Widget("Audio", {"sources": ["upload"], "type": "filepath", "format": None}),
    player=Widget("Audio", {"type": "filepath", "buttons": ["download"]}), playable=(".wav", ".mp3", ".ogg", ".flac"),
    viewer=Widget("Image", {"show_label": False, "height": 110, "interactive": False}), viewable=(".png",))


class AudioModality(Modality):
    """Fixed-length clips at one sample rate, in a codec's spectrogram space.

    Args:
        sample_rate: the model's rate; files at other rates are resampled.
        clip_seconds: clip length; rounded up so the frame count is a multiple of
            ``frame_multiple`` (the U-Net halves the time axis per level).
        codec: ``"mel"`` (log-mel, phase estimated) or ``"stft"`` (compressed complex STFT, exact).
        codec_options: the codec's keyword arguments (``n_fft``, ``hop_length``, ``n_mels``, the mel
            codec's ``decoder``: ``pghi`` or ``griffin_lim``...).
        audio_channels: 1 mixes files to mono, 2 keeps stereo.
        trim_silence: drop leading silence of loaded files before cropping.
        normalize: ``"peak"``, ``"loudness"`` or ``"none"`` for loaded files, and for written ones:
            every file and rendered clip is levelled as inputs are, so a variation sits at its
            source's level and takes compare at one level (raised by at most
            :data:`MAX_LEVEL_GAIN_DB`); none is ever clipped (a file that would be is turned
            down to a peak of 0.99).
        midi: also write ``stem.mid``, a monophonic transcription (pitch tracking) of each file.
        output_rate: write files at this rate: None for the model rate, an int, or ``"input"`` for
            the rate of the last file loaded (so ``vary`` answers a 44.1 kHz sample at 44.1 kHz).
        max_seconds: the most of a file that is read: only the clip's length is read from the start
            of a file, and with ``trim_silence`` the sound must start within ``max_seconds``.
        output_bits: the written WAVs' depth: None (16), 16, 24 or 32 (float), or ``"input"`` for the
            depth of the last file loaded (16 before any, and for lossy files such as MP3).
    """

    file_extensions: ClassVar[tuple[str, ...]] = AUDIO_EXTENSIONS
    time_axis: ClassVar[int | None] = 1
    file_widgets: ClassVar[FileWidgets | None] = AUDIO_WIDGETS

    def __init__(self, sample_rate: int = 16000, clip_seconds: float = 1.0, codec: str = "mel",
                 codec_options: dict[str, Any] | None = None, audio_channels: int = 1, trim_silence: bool = False,
                 normalize: str = "peak", output_rate: int | str | None = None, midi: bool = False,
                 frame_multiple: int = 8, max_seconds: float = DEFAULT_MAX_SECONDS,
                 output_bits: int | str | None = None) -> None:
        if audio_channels not in (1, 2):
            raise ValueError(f"AudioModality: audio_channels must be 1 (mono) or 2 (stereo), got {audio_channels}")
        self.codec_name = codec
        self.codec = build_codec(codec, sample_rate, **dict(codec_options or {}))
        self.sample_rate, self.audio_channels = int(sample_rate), int(audio_channels)
        if output_rate not in (None, "input") and not (str(output_rate).isdigit()
                                                      and 1000 <= int(output_rate) <= MAX_RATE):
            raise ValueError(f"AudioModality: output_rate must be null, a rate from 1000 to {MAX_RATE} Hz or 'input', "
                             f"got {output_rate!r}")
        if not 0 < float(clip_seconds) <= 60:
            raise ValueError(f"AudioModality: clip_seconds must be more than 0 and at most 60, got {clip_seconds!r}")
        output_bits = 16 if output_bits is None else output_bits
        if output_bits != "input" and not (str(output_bits).isdigit() and int(output_bits) in OUTPUT_SUBTYPES):
            raise ValueError(f"AudioModality: output_bits must be null (16), 16, 24, 32 (float) or 'input', "
                             f"got {output_bits!r}")
        if normalize not in NORMALIZE_MODES:
            raise ValueError(f"AudioModality: unknown normalize mode {normalize!r}; choose normalize= one of: "
                             f"{', '.join(NORMALIZE_MODES)}")
        if isinstance(frame_multiple, bool) or not isinstance(frame_multiple, int) or frame_multiple < 1:
            raise ValueError(f"AudioModality: frame_multiple must be a whole number of at least 1 (the frame count is "
                             f"rounded up to a multiple of it), got {frame_multiple!r}")
        self.trim_silence, self.normalize, self.output_rate = trim_silence, normalize, output_rate
        self.output_bits = output_bits if output_bits == "input" else int(output_bits)
        self._input_rate: int | None = None
        self._input_bits: int | None = None
        self._decoded: dict[str, np.ndarray] = {}  # content key -> waveform, oldest first
        self.midi = bool(midi)
        if not float(max_seconds) > 0:
            raise ValueError(f"AudioModality: max_seconds must be > 0, got {max_seconds!r}")
        self.max_seconds = float(max_seconds)
        frames = self.codec.frames(round(clip_seconds * sample_rate))
        frames = -(-frames // frame_multiple) * frame_multiple
        self.num_samples = (frames - 1) * self.codec.hop_length
        super().__init__(audio_channels * self.codec.per_channel, (self.codec.bins, frames))

    # ------------------------------------------------------------------ waveforms <-> model space
    @property
    def space(self) -> tuple[Any, ...]:
        """The shape and the codec's encoding options (:attr:`.codecs.Codec.space`): a model trained
        on one mel scale cannot be handed items of another of the same shape."""
        return *super().space, self.codec.space

    def encode_wave(self, wave: np.ndarray | Tensor) -> Tensor:
        """A waveform ``[samples]`` or ``[audio_channels, samples]`` at the model rate -> ``[C, F, T]``."""
        wave = torch.as_tensor(np.asarray(wave, dtype=np.float32))
        if wave.dim() == 1:
            wave = wave.expand(self.audio_channels, -1)
        wave = torch.nn.functional.pad(wave[..., : self.num_samples], (0, max(0, self.num_samples - wave.shape[-1])))
        return self.codec.encode(wave)

    def decode(self, x: Tensor) -> np.ndarray:
        """Model-space ``[C, F, T]`` (or a batch) -> waveform ``[audio_channels, samples]`` at the model rate.

        The length follows the frame count, so longer spectrograms (``extend``) decode to longer audio.
        The last :data:`DECODES_KEPT` decoded items are remembered by content, so a command that
        writes each item and then the grid of them decodes every item once (phase retrieval is
        most of a command's time)."""
        x = x.detach().float().cpu()
        items = x.reshape(-1, *x.shape[-3:])
        keys = [_content_key(item) for item in items]
        found = {key: self._decoded[key] for key in keys if key in self._decoded}
        missing = [i for i, key in enumerate(keys) if key not in found]
        if missing:
            waves = self.codec.decode(items[missing], (x.shape[-1] - 1) * self.codec.hop_length).numpy()
            for i, wave in zip(missing, waves):
                found[keys[i]] = wave
                self._remember(keys[i], wave)
        waves = np.stack([found[key] for key in keys])
        return waves.reshape(*x.shape[:-3], *waves.shape[1:])

    def _remember(self, key: str, wave: np.ndarray) -> None:
        """Keep a decoded item, dropping the oldest beyond :data:`DECODES_KEPT` / :data:`DECODED_VALUES`."""
        self._decoded[key] = wave
        while len(self._decoded) > DECODES_KEPT or sum(w.size for w in self._decoded.values()) > DECODED_VALUES:
            self._decoded.pop(next(iter(self._decoded)))

    def load_wave(self, path: str | Path) -> np.ndarray:
        """A file as the model hears it: ``[audio_channels, num_samples]`` at the model rate."""
        self._input_rate = file_sample_rate(path)
        self._input_bits = file_bits(path) if self.output_bits == "input" else None
        return load_clip(path, self.sample_rate, self.num_samples, channels=self.audio_channels,
                         trim_silence=self.trim_silence, normalize_mode=self.normalize,
                         max_seconds=self.max_seconds)

    # ------------------------------------------------------------------ the Modality contract
    def load(self, path: str | Path) -> Tensor:
        return self.encode_wave(self.load_wave(path))

    def read_notes(self, path: str | Path) -> list[str]:
        """A file that still sounds after the clip the model hears (within :data:`UNUSED_SOUND_DB`
        of the clip's peak): that part is not used (``extend`` continues from the clip's end, not
        the file's). A one-shot's fading tail or trailing silence is no such sound."""
        seconds, clip = file_seconds(path), self.num_samples / self.sample_rate
        if seconds is None or seconds <= clip + CLIP_SLACK_SECONDS:
            return []
        try:  # at the file's own rate: peaks need no resampling (load() already read the clip at the model's)
            rate = file_sample_rate(path)
            wave = read_audio(path, rate, self.audio_channels, seconds=min(seconds, self.max_seconds + clip))
        except MediaError:  # load() judged the file; a note is no place to refuse it
            return []
        if self.trim_silence:
            wave = trim_leading_silence(wave, rate)
        cut = round(clip * rate)
        kept, rest = np.abs(wave[:, :cut]), np.abs(wave[:, cut:])
        if rest.size == 0 or rest.max() < kept.max() * 10 ** (-UNUSED_SOUND_DB / 20):
            return []
        where = "from its first sound" if self.trim_silence else "from its start"
        return [f"it is {seconds:.2f} s long and the model hears a {clip:.2f} s clip of it ({where}); the sound "
                "after the clip is not used: cut the part you want to a file of its own"]

    def save(self, x: Tensor, stem: str | Path) -> list[Path]:
        """``stem.wav`` (``output_bits``), ``stem.png`` (its spectrogram) and with ``midi`` ``stem.mid``."""
        stem = Path(stem)
        if x.dim() != 3 or x.shape[0] != self.channels:
            raise MediaError(f"cannot write audio '{stem}.wav': expected [{self.channels}, bins, frames], "
                             f"got shape {tuple(x.shape)}")
        wave = self.level(self.decode(x))
        written = [self.write(wave, stem.with_name(stem.name + ".wav")),
                   write_picture(self.picture(x), stem.with_name(stem.name + ".png"))]
        if self.midi:
            from .transcription import transcribe  # pitch tracking's libraries load only for midi=true

            notes = transcribe(wave.mean(axis=0), self.sample_rate)
            written.append(write_midi(notes, stem.with_name(stem.name + ".mid")))
        return written

    def save_grid(self, batch: Tensor, stem: str | Path) -> list[Path]:
        """``stem.png`` (every spectrogram) and ``stem.wav`` (every clip in turn, short gaps)."""
        stem = Path(stem)
        rendered = self.render(batch)
        return [write_picture(rendered[1].data, stem.with_name(stem.name + ".png")),
                self.write(rendered[0].data[None], stem.with_name(stem.name + ".wav"), rate=rendered[0].rate)]

    def render(self, batch: Tensor) -> list[Rendered]:
        """The clips one after another (mono mix) and the grid of their spectrograms."""
        if batch.dim() != 4 or batch.shape[0] == 0:
            raise ValueError(f"AudioModality.render: expected a non-empty [B, C, F, T], got {tuple(batch.shape)}")
        waves = np.stack([below_full_scale(self.level(wave)) for wave in self.decode(batch).mean(axis=1)])
        gap = np.zeros((len(waves), int(GRID_GAP_SECONDS * self.sample_rate)), dtype=np.float32)
        audio = np.concatenate([waves, gap], axis=1).reshape(-1)
        return [Rendered("audio", audio.astype(np.float32), self.sample_rate, SOUND_WRITER, time_axis=0),
                Rendered("image", picture_grid([self.picture(x) for x in batch]), writer=PICTURE_WRITER)]

    def envelope(self, batch: Tensor) -> Tensor:
        """Energy per frame ``[B, frames]`` in dB (summed over bins and channels)."""
        power = 10.0 ** (self.codec.power_db(batch.float()) / 10.0)
        return 10.0 * torch.log10(power.sum(dim=(-3, -2)).clamp_min(1e-10))

    def augmentations(self) -> dict[str, Callable[..., Tensor]]:
        """Gain, EQ tilt and time shift (and, for the mel codec, pitch shift and noise): see
        :mod:`diffusionkit_audio.augment`."""
        return audio_transforms(self.codec)

    def describe(self, batch: Tensor) -> list[dict[str, float | str]]:
        """Each item decoded to sound (as :meth:`save` writes it before levelling, channels mixed) and measured:
        ``centroid_hz``, ``decay_s``, ``pitch_hz``, ``crest_db`` (:func:`~.captions.descriptors`)."""
        items = batch.reshape(-1, *batch.shape[-3:])
        return [{**descriptors(wave, self.sample_rate)} for wave in self.decode(items)] if len(items) else []

    def prompt_checks(self) -> list[PromptCheck]:
        """The drums' checks (:func:`~.captions.drum_prompt_checks`): "bright"/"dark", "short"/"long",
        "low"/"high", "soft"/"punchy" kicks, snares and toms, unseen paraphrases of three pairs, and
        each drum class by name."""
        return drum_prompt_checks(DRUM_CLASSES)

    def roundtrip(self, path: str | Path, stem: str | Path) -> dict[str, float]:
        """File -> model space -> ``stem.wav``; the waveform SNR and the spectral error of the codec."""
        reference = self.load_wave(path)
        start = time.perf_counter()
        x = self.encode_wave(reference)
        encoded = time.perf_counter()
        decoded = self.decode(x)
        done = time.perf_counter()
        self.save(x, stem)
        ref, est = torch.from_numpy(reference), torch.from_numpy(decoded)
        return {"snr_db": snr_db(ref, est), "log_spectral_distance_db": self._log_spectral_distance(ref, est),
                "encode_ms": 1e3 * (encoded - start), "decode_ms": 1e3 * (done - encoded)}

    # ------------------------------------------------------------------ helpers
    def _log_spectral_distance(self, reference: Tensor, estimate: Tensor) -> float:
        """RMS difference of the STFT log power (dB), a phase-blind error for an estimated phase."""
        def db(w: Tensor) -> Tensor:
            return 10 * torch.log10(self.codec.stft(w).abs().square().clamp_min(1e-8))
        return float((db(reference) - db(estimate)).square().mean().sqrt())

    def picture(self, x: Tensor) -> np.ndarray:
        """The coloured spectrogram of one item (channels averaged), uint8 ``[H, W, 3]``."""
        db = self.codec.power_db(x.detach().float().cpu()).mean(dim=0).numpy()
        return colourise(db, self.codec.ceiling_db - 100.0, self.codec.ceiling_db)

    def level(self, wave: np.ndarray) -> np.ndarray:
        """A decoded clip levelled as loaded files are (``normalize``), raised by at most
        :data:`MAX_LEVEL_GAIN_DB` (a near-silent take stays quiet rather than becoming hiss)."""
        return normalize(wave, self.normalize, max_gain_db=MAX_LEVEL_GAIN_DB)

    def write(self, wave: np.ndarray, path: Path, rate: int | None = None) -> Path:
        """A waveform at the model rate as WAV (``output_bits``), at ``output_rate`` when set, never clipped."""
        rate = rate or self.sample_rate
        target = self.output_rate
        if target == "input":  # the input's rate, within the rates output_rate takes (a 500 kHz file: 384 kHz)
            target = min(self._input_rate, MAX_RATE) if self._input_rate else None
        if target and int(target) != rate:
            wave, rate = resample(wave, rate, int(target)), int(target)
        bits = (self._input_bits or 16) if self.output_bits == "input" else self.output_bits
        return write_wav(path, below_full_scale(wave), rate, OUTPUT_SUBTYPES[bits])
