"""Waveform <-> spectrogram codecs: the two model spaces of the audio modality.

A codec maps a waveform ``[..., audio_channels, samples]`` to a model-space tensor
``[..., audio_channels * per_channel, bins, frames]`` in roughly [-1, 1] and back.

* ``mel``: log-mel power spectrogram; its phase is estimated, so the round trip is perceptual
  rather than sample-exact. ``decoder="pghi"`` (the default) estimates the magnitude by
  non-negative least squares and the phase by Phase Gradient Heap Integration, then a few Fast
  Griffin-Lim iterations (:mod:`.phase_retrieval`); ``decoder="griffin_lim"`` is the first
  decoder (pseudo-inverse filterbank, Griffin & Lim 1984 from random phases), kept so that
  earlier outputs can be reproduced.
* ``stft``: the complex STFT with power-law compressed magnitude (as in Richter et al. 2023,
  SGMSE+), real and imaginary parts as channels, inverted exactly by the inverse STFT.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

import torch
import torchaudio.transforms as T
from torch import Tensor

from .phase_retrieval import fast_griffin_lim, interpolate_frames, mel_to_magnitude, pghi_phase


#: the largest FFT and the highest sample rate a codec accepts (a config is data: n_fft=10**9 would
#: allocate gigabytes before anything is checked).
MAX_N_FFT = 1 << 16
MAX_RATE = 384_000
MAX_MELS = 1024


class Codec(ABC):
    """One invertible (or approximately invertible) spectrogram representation."""

    #: model-space channels per audio channel.
    per_channel: int = 1
    #: the level (dB, as :meth:`power_db` measures it) drawn brightest in pictures.
    ceiling_db: float = 40.0

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int) -> None:
        if hop_length < 1 or n_fft < 2 or hop_length > n_fft:
            raise ValueError(f"{type(self).__name__}: need 1 <= hop_length <= n_fft, got {hop_length} and {n_fft}")
        if n_fft > MAX_N_FFT or not 0 < sample_rate <= MAX_RATE:
            raise ValueError(f"{type(self).__name__}: n_fft must be at most {MAX_N_FFT} and sample_rate from 1 to "
                             f"{MAX_RATE} Hz, got {n_fft} and {sample_rate}")
        self.sample_rate, self.n_fft, self.hop_length = int(sample_rate), int(n_fft), int(hop_length)
        self.window = torch.hann_window(self.n_fft)

    @property
    def space(self) -> tuple[Any, ...]:
        """The options that decide what :meth:`encode` writes (not the decoder's own): two codecs
        with the same ``space`` encode a waveform alike."""
        return type(self).__name__, self.sample_rate, self.n_fft, self.hop_length

    @property
    @abstractmethod
    def bins(self) -> int:
        """Frequency rows of the model space."""

    def frames(self, num_samples: int) -> int:
        """Time columns for ``num_samples`` samples (centred frames)."""
        return num_samples // self.hop_length + 1

    def stft(self, wave: Tensor) -> Tensor:
        """Complex STFT ``[..., n_fft // 2 + 1, frames]`` with this codec's window and hop."""
        lead = wave.shape[:-1]
        spec = torch.stft(wave.reshape(-1, wave.shape[-1]).float(), self.n_fft, self.hop_length,
                          window=self.window.to(wave.device), center=True, return_complex=True)
        return spec.reshape(*lead, *spec.shape[-2:])

    def istft(self, spec: Tensor, num_samples: int) -> Tensor:
        lead = spec.shape[:-2]
        wave = torch.istft(spec.reshape(-1, *spec.shape[-2:]), self.n_fft, self.hop_length,
                           window=self.window.to(spec.device), center=True, length=num_samples)
        return wave.reshape(*lead, num_samples)

    @abstractmethod
    def encode(self, wave: Tensor) -> Tensor:
        """``[..., A, samples]`` -> ``[..., A * per_channel, bins, frames]``."""

    @abstractmethod
    def decode(self, x: Tensor, num_samples: int) -> Tensor:
        """``[..., A * per_channel, bins, frames]`` -> ``[..., A, num_samples]``."""

    @abstractmethod
    def power_db(self, x: Tensor) -> Tensor:
        """Power in dB ``[..., A, bins, frames]`` of model-space items (for pictures and envelopes)."""

    @abstractmethod
    def scale_db(self, x: Tensor, db: Tensor) -> Tensor:
        """Model-space items with each bin's level changed by ``db`` (broadcast over
        ``[..., bins, 1]``): a gain, or an EQ when it varies over the bins."""


#: ``codec_options.decoder`` choices of the mel codec (the first is the default).
MEL_DECODERS = ("pghi", "griffin_lim")
#: ``codec_options.mel_scale`` choices of the mel codec (the first is the default).
MEL_SCALES = ("slaney", "htk")
#: Griffin-Lim iterations of each decoder when ``griffin_lim_iters`` is not given.
DEFAULT_ITERATIONS = {"pghi": 16, "griffin_lim": 32}


class MelCodec(Codec):
    """Log-mel power scaled linearly from ``[floor_db, ceiling_db]`` to [-1, 1].

    Decoders (``decoder``; the encoder, and so the model space, is the same for both):

    * ``pghi`` (default): magnitude by non-negative least squares against the filterbank
      (:func:`~.phase_retrieval.mel_to_magnitude`), interpolated to half the hop, phase by Phase
      Gradient Heap Integration (Prusa et al. 2017), then ``griffin_lim_iters`` (default 16)
      Fast Griffin-Lim iterations (Perraudin et al. 2013). Deterministic.
    * ``griffin_lim``: the first decoder: pseudo-inverse filterbank clamped at 0, then
      ``griffin_lim_iters`` (default 32) iterations of torchaudio's Griffin-Lim from random phases
      (torch's global generator), at the codec's hop.
    """

    per_channel = 1

    def __init__(self, sample_rate: int, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 64,
                 f_min: float = 20.0, f_max: float | None = None, floor_db: float = -65.0, ceiling_db: float = 35.0,
                 griffin_lim_iters: int | None = None, decoder: str = "pghi", mel_scale: str = "slaney") -> None:
        super().__init__(sample_rate, n_fft, hop_length)
        if ceiling_db <= floor_db:
            raise ValueError(f"MelCodec: ceiling_db ({ceiling_db}) must exceed floor_db ({floor_db})")
        if not 1 <= n_mels <= MAX_MELS:
            raise ValueError(f"MelCodec: n_mels must be from 1 to {MAX_MELS}, got {n_mels}")
        if decoder not in MEL_DECODERS:
            raise ValueError(f"MelCodec: unknown decoder {decoder!r}; choose codec_options.decoder= one of: "
                             f"{', '.join(MEL_DECODERS)}")
        if mel_scale not in MEL_SCALES:
            raise ValueError(f"MelCodec: unknown mel_scale {mel_scale!r}; choose codec_options.mel_scale= one of: "
                             f"{', '.join(MEL_SCALES)}")
        iterations = DEFAULT_ITERATIONS[decoder] if griffin_lim_iters is None else griffin_lim_iters
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ValueError(f"MelCodec: griffin_lim_iters must be a whole number >= 0, got {griffin_lim_iters!r}")
        self.decoder, self.griffin_lim_iters = decoder, iterations
        self.n_mels, self.floor_db, self.ceiling_db = int(n_mels), float(floor_db), float(ceiling_db)
        f_max = f_max or sample_rate / 2
        self.bands = (float(f_min), float(f_max), mel_scale)
        self.to_mel = T.MelScale(n_mels, sample_rate, f_min, f_max, n_fft // 2 + 1, norm="slaney",
                                   mel_scale=mel_scale)
        # Least squares against the filterbank once, instead of an iterative solve per call.
        self.from_mel = torch.linalg.pinv(self.to_mel.fb.T)
        self.griffin_lim = T.GriffinLim(n_fft, n_iter=iterations, hop_length=hop_length, power=1.0,
                                        momentum=0.99)
        #: bin power taken as silence by the pghi decoder: 30 dB below the floor's mean bin power.
        self.silence_power = 10.0 ** ((self.floor_db - 30.0) / 10.0) / float(self.to_mel.fb.sum(0).mean())
        #: the pghi decoder's hop: half the codec's, for a more redundant STFT.
        self.decode_hop = max(1, self.hop_length // 2)

    @property
    def bins(self) -> int:
        return self.n_mels

    @property
    def space(self) -> tuple[Any, ...]:
        return *super().space, self.n_mels, self.bands, self.floor_db, self.ceiling_db

    def encode(self, wave: Tensor) -> Tensor:
        power = self.stft(wave).abs().square()
        db = 10.0 * torch.log10(self.to_mel(power).clamp_min(1e-12))
        return ((db - self.floor_db) / (self.ceiling_db - self.floor_db) * 2.0 - 1.0).clamp(-1.0, 1.0)

    def power_db(self, x: Tensor) -> Tensor:
        return (x.clamp(-1.0, 1.0) + 1.0) / 2.0 * (self.ceiling_db - self.floor_db) + self.floor_db

    def scale_db(self, x: Tensor, db: Tensor) -> Tensor:
        changed = (x + db * 2.0 / (self.ceiling_db - self.floor_db)).clamp(-1.0, 1.0)
        return torch.where(x <= -1.0, x, changed)  # silence stays silence

    def from_power_db(self, db: Tensor) -> Tensor:
        """Model space of a power in dB (the inverse of :meth:`power_db` inside the range)."""
        return ((db - self.floor_db) / (self.ceiling_db - self.floor_db) * 2.0 - 1.0).clamp(-1.0, 1.0)

    def mel_power(self, x: Tensor) -> Tensor:
        """Linear mel power of model-space items; the floor (-1) is silence (0)."""
        mel_power = 10.0 ** (self.power_db(x.float()) / 10.0)
        return torch.where(x <= -1.0, torch.zeros_like(mel_power), mel_power)

    def decode(self, x: Tensor, num_samples: int) -> Tensor:
        lead = x.shape[:-2]
        mel_power = self.mel_power(x).reshape(-1, *x.shape[-2:])
        if self.decoder == "griffin_lim":
            wave = self._decode_griffin_lim(mel_power, num_samples)
        else:
            wave = self._decode_pghi(mel_power, num_samples)
        return wave.reshape(*lead, num_samples)

    def _decode_griffin_lim(self, mel_power: Tensor, num_samples: int) -> Tensor:
        power = torch.einsum("fm,...mt->...ft", self.from_mel.to(mel_power.device), mel_power).clamp_min(0.0)
        self.griffin_lim.window = self.window.to(mel_power.device)
        wave = self.griffin_lim(power.sqrt())
        wave = wave[..., :num_samples]
        return torch.nn.functional.pad(wave, (0, num_samples - wave.shape[-1]))

    def _decode_pghi(self, mel_power: Tensor, num_samples: int) -> Tensor:
        device = mel_power.device
        length = max(num_samples, self.n_fft)  # the STFT needs half a window on each side; cropped below
        magnitude = mel_to_magnitude(mel_power.cpu(), self.to_mel.fb, self.silence_power)
        magnitude = interpolate_frames(magnitude, self.hop_length, self.decode_hop, length)
        phase = torch.from_numpy(np.stack([pghi_phase(m.numpy(), self.decode_hop, self.n_fft)
                                           for m in magnitude])).float()
        wave = fast_griffin_lim(magnitude, phase, self.n_fft, self.decode_hop, self.window, length,
                                self.griffin_lim_iters)
        return wave[..., :num_samples].to(device)


class STFTCodec(Codec):
    """Complex STFT with magnitude compressed as ``|X|^alpha`` (phase kept), times ``scale``;
    real and imaginary parts are the two channels. Exactly invertible (up to float error).

    ``n_fft`` even gives ``n_fft // 2 + 1`` bins; the default 510 gives 256 rows.
    """

    per_channel = 2

    def __init__(self, sample_rate: int, n_fft: int = 510, hop_length: int = 128, alpha: float = 0.5,
                 scale: float = 0.15) -> None:
        super().__init__(sample_rate, n_fft, hop_length)
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"STFTCodec: alpha must lie in (0, 1], got {alpha}")
        self.alpha, self.scale = float(alpha), float(scale)

    @property
    def space(self) -> tuple[Any, ...]:
        return *super().space, self.alpha, self.scale

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def encode(self, wave: Tensor) -> Tensor:
        spec = self.stft(wave)
        compressed = spec.abs().pow(self.alpha) * torch.exp(1j * spec.angle()) * self.scale
        parts = torch.stack([compressed.real, compressed.imag], dim=-3)  # [..., A, 2, F, T]
        return parts.flatten(-4, -3)

    def _complex(self, x: Tensor) -> Tensor:
        parts = x.float().unflatten(-3, (-1, 2)) / self.scale
        return torch.complex(parts[..., 0, :, :], parts[..., 1, :, :])

    def power_db(self, x: Tensor) -> Tensor:
        magnitude = self._complex(x).abs().pow(1.0 / self.alpha)
        return 20.0 * torch.log10(magnitude.clamp_min(1e-6))

    def scale_db(self, x: Tensor, db: Tensor) -> Tensor:
        return x * (10.0 ** (db / 20.0)) ** self.alpha  # real and imaginary parts alike

    def decode(self, x: Tensor, num_samples: int) -> Tensor:
        compressed = self._complex(x)
        magnitude = compressed.abs().pow(1.0 / self.alpha)
        return self.istft(torch.polar(magnitude, compressed.angle()), num_samples)


#: codec name (the ``modality.codec=`` choice) -> class.
CODECS: dict[str, type[Codec]] = {"mel": MelCodec, "stft": STFTCodec}


def build_codec(name: str, sample_rate: int, **options) -> Codec:
    """The codec called ``name`` with its options; ValueError naming the choices otherwise."""
    if name not in CODECS:
        raise ValueError(f"unknown audio codec '{name}'; choose modality.codec= one of: {', '.join(CODECS)}")
    takes = [p for p in inspect.signature(CODECS[name]).parameters if p != "sample_rate"]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise ValueError(f"the {name} codec takes no option '{unknown[0]}' (codec_options.{unknown[0]}); it takes: "
                         f"{', '.join(takes)}")
    return CODECS[name](sample_rate, **options)


def snr_db(reference: Tensor, estimate: Tensor) -> float:
    """Signal-to-noise ratio of ``estimate`` against ``reference`` in dB."""
    noise = (reference - estimate).square().sum()
    return float(10.0 * math.log10(float(reference.square().sum()) / max(float(noise), 1e-20)))
