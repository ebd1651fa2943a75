"""Phase-blind distances between a reference waveform and an estimate of it, for codec tables
and tests: log-spectral distance, multi-resolution STFT distance, energy above a frequency.

Every distance floors both spectra at ``floor_db`` below the reference's largest bin, so that
what lies far below the sound (and below any codec's range) neither dominates nor depends on
the level of the file.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

#: FFT sizes of the multi-resolution STFT distance (hop a quarter of each, Hann windows).
MR_FFT_SIZES = (512, 1024, 2048)


def _as_tensor(wave: np.ndarray | Tensor) -> Tensor:
    return torch.as_tensor(np.asarray(wave, dtype=np.float32)) if not isinstance(wave, Tensor) else wave.float()


def magnitude(wave: np.ndarray | Tensor, n_fft: int, hop: int) -> Tensor:
    """``|STFT|`` ``[..., n_fft // 2 + 1, frames]`` of ``[..., samples]`` (Hann, centred frames)."""
    wave = _as_tensor(wave)
    lead = wave.shape[:-1]
    spec = torch.stft(wave.reshape(-1, wave.shape[-1]), n_fft, hop, window=torch.hann_window(n_fft),
                      center=True, return_complex=True).abs()
    return spec.reshape(*lead, *spec.shape[-2:])


def _floored(reference: Tensor, estimate: Tensor, floor_db: float) -> tuple[Tensor, Tensor]:
    floor = reference.amax(dim=(-2, -1), keepdim=True) * 10.0 ** (floor_db / 20.0)
    floor = floor.clamp_min(1e-12)
    return reference.maximum(floor), estimate.maximum(floor)


def log_spectral_distance(reference: np.ndarray | Tensor, estimate: np.ndarray | Tensor, n_fft: int = 2048,
                          hop: int = 512, floor_db: float = -80.0) -> Tensor:
    """RMS difference (dB) of the STFT log power over every bin and frame, per item ``[...]``."""
    ref, est = _floored(magnitude(reference, n_fft, hop), magnitude(estimate, n_fft, hop), floor_db)
    return (20.0 * torch.log10(ref / est)).square().mean(dim=(-2, -1)).sqrt()


def multi_resolution_stft(reference: np.ndarray | Tensor, estimate: np.ndarray | Tensor,
                          sizes: Sequence[int] = MR_FFT_SIZES, floor_db: float = -80.0) -> tuple[Tensor, Tensor]:
    """Multi-resolution STFT distance (as in Yamamoto et al. 2020, Parallel WaveGAN), per item:
    spectral convergence ``|| |S| - |S^| ||_F / || |S| ||_F`` and log-magnitude distance
    ``mean |ln |S| - ln |S^| |``, each averaged over the FFT ``sizes`` (hop ``size // 4``)."""
    convergence, log_distance = [], []
    for size in sizes:
        ref, est = magnitude(reference, size, size // 4), magnitude(estimate, size, size // 4)
        convergence.append(torch.linalg.norm(ref - est, dim=(-2, -1)) / torch.linalg.norm(ref, dim=(-2, -1)).clamp_min(1e-12))
        ref, est = _floored(ref, est, floor_db)
        log_distance.append((ref.log() - est.log()).abs().mean(dim=(-2, -1)))
    return torch.stack(convergence).mean(0), torch.stack(log_distance).mean(0)


def energy_above(wave: np.ndarray | Tensor, sample_rate: int, hz: float, n_fft: int = 2048) -> Tensor:
    """The energy of ``wave`` above ``hz`` and in all, per item: ``([...], [...])``, from its STFT."""
    power = magnitude(wave, n_fft, n_fft // 4).square()
    freqs = torch.arange(power.shape[-2]) * sample_rate / n_fft
    return power[..., freqs > hz, :].sum(dim=(-2, -1)), power.sum(dim=(-2, -1))
