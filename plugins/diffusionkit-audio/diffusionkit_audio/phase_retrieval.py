"""From a mel spectrogram back to a waveform: magnitude estimation and phase retrieval.

The mel codec's decoder (``codec_options.decoder``) is built from these small steps:

1. :func:`mel_to_magnitude`: a linear-frequency magnitude whose mel projection matches the
   model's mel power. Start from each band's mean bin power interpolated in log power between
   band centres (smooth, positive, no pseudo-inverse ringing), then refine it with a few
   multiplicative non-negative least-squares updates (Lee & Seung 2001, "Algorithms for
   non-negative matrix factorization", the update for a fixed dictionary), which keep it
   non-negative and pull its mel projection onto the given one.
2. :func:`interpolate_frames`: the same magnitude on a finer hop (log-linear in time), so that
   phase retrieval works on a more redundant STFT than the model's frame rate.
3. :func:`pghi_phase`: Phase Gradient Heap Integration (Prusa, Balazs & Sondergaard 2017, "A
   noniterative method for reconstruction of phase from STFT magnitude", IEEE/ACM TASLP 25(5)):
   the phase derivatives of a Gaussian-window STFT follow from the log-magnitude derivatives;
   they are integrated from the largest coefficient outwards.
4. :func:`fast_griffin_lim`: a few Fast Griffin-Lim iterations (Perraudin, Balazs & Sondergaard
   2013, "A fast Griffin-Lim algorithm", WASPAA) from that phase.

Everything here is deterministic: no random initial phase.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

#: Prusa et al. 2017, Table 1: the Gaussian whose time-frequency spread matches a Hann window
#: of ``L`` samples has ``lambda = HANN_GAMMA * L**2`` (samples squared).
HANN_GAMMA = 0.25645


# --------------------------------------------------------------------------- magnitude


def band_centres(filterbank: Tensor) -> Tensor:
    """The centre of mass (in STFT bins) of each mel filter of ``filterbank`` ``[bins, mels]``."""
    bins = torch.arange(filterbank.shape[0], dtype=filterbank.dtype)
    return (filterbank * bins[:, None]).sum(0) / filterbank.sum(0).clamp_min(1e-12)


def spread_mel_power(mel_power: Tensor, filterbank: Tensor, silence: float) -> Tensor:
    """Bin power ``[..., bins, frames]`` from mel power ``[..., mels, frames]``: each band's mean
    bin power (its power over its filter's weight), interpolated in log power between band
    centres and held constant past the first and last. Bands at or below ``silence`` count as
    silence, and bins whose interpolated power falls below it are zero."""
    weight = filterbank.sum(0).clamp_min(1e-12)
    mean = mel_power / weight[:, None]
    log_mean = torch.log(mean.clamp_min(silence))
    centres = band_centres(filterbank)
    bins = torch.arange(filterbank.shape[0], dtype=centres.dtype)
    upper = torch.searchsorted(centres, bins).clamp(1, len(centres) - 1)
    low, high = centres[upper - 1], centres[upper]
    t = ((bins - low) / (high - low).clamp_min(1e-12)).clamp(0.0, 1.0)[:, None]
    power = torch.exp(log_mean[..., upper - 1, :] * (1.0 - t) + log_mean[..., upper, :] * t)
    return torch.where(power > silence * 1.0001, power, torch.zeros_like(power))


def nnls_refine(power: Tensor, mel_power: Tensor, filterbank: Tensor, iterations: int) -> Tensor:
    """``iterations`` multiplicative updates ``P <- P * (W y) / (W W^T P)`` for the non-negative
    least-squares problem ``min ||W^T P - y||, P >= 0`` (Lee & Seung 2001), with ``W`` the
    filterbank ``[bins, mels]``, ``y`` the mel power and ``P`` the bin power ``[..., bins, frames]``.
    Zeros stay zero, so silence stays silence."""
    target = torch.einsum("fm,...mt->...ft", filterbank, mel_power)
    for _ in range(iterations):
        projected = torch.einsum("fm,...ft->...mt", filterbank, power)
        power = power * target / (torch.einsum("fm,...mt->...ft", filterbank, projected) + 1e-30)
    return power


def mel_to_magnitude(mel_power: Tensor, filterbank: Tensor, silence: float, nnls_iterations: int = 5) -> Tensor:
    """STFT magnitude ``[..., bins, frames]`` whose mel projection approximates ``mel_power``:
    :func:`spread_mel_power`, then :func:`nnls_refine`."""
    power = spread_mel_power(mel_power, filterbank, silence)
    return nnls_refine(power, mel_power, filterbank, nnls_iterations).sqrt()


def interpolate_frames(magnitude: Tensor, hop: int, fine_hop: int, num_samples: int) -> Tensor:
    """``magnitude`` ``[..., bins, frames]`` at ``hop`` resampled to the frames of ``fine_hop``
    (``num_samples // fine_hop + 1`` centred frames), linearly in log magnitude; zeros stay
    zero where both neighbours are zero."""
    frames = magnitude.shape[-1]
    fine = num_samples // fine_hop + 1
    position = (torch.arange(fine, dtype=torch.float64) * fine_hop / hop).clamp(max=frames - 1).float()
    left = position.floor().long().clamp(max=max(frames - 2, 0))
    right = (left + 1).clamp(max=frames - 1)
    t = position - left
    floor = 1e-20
    log_mag = torch.log(magnitude.clamp_min(floor))
    out = torch.exp(log_mag[..., left] * (1.0 - t) + log_mag[..., right] * t)
    return torch.where(out > floor * 1.0001, out, torch.zeros_like(out))


# --------------------------------------------------------------------------- PGHI


def _heap_integrate_py(magnitude: np.ndarray, dphase_time: np.ndarray, dphase_freq: np.ndarray,
                       tolerance: float) -> np.ndarray:
    """Algorithm 1 of Prusa et al. 2017: integrate the phase derivatives over ``[bins, frames]``
    from the largest coefficient outwards (trapezoidal rule between neighbours), always from the
    largest coefficient reached so far; coefficients below ``tolerance`` keep phase 0 and are not
    crossed. One plain function over arrays (its max-heap written out in ``keys``/``items``), so
    that numba compiles it whole (:func:`_heap_integrate`)."""
    bins, frames = magnitude.shape
    flat = magnitude.ravel()
    time_slope, freq_slope = dphase_time.ravel(), dphase_freq.ravel()
    phase = np.zeros(bins * frames)
    done = flat < tolerance
    keys = np.empty(bins * frames)
    items = np.empty(bins * frames, dtype=np.int64)
    size = 0
    order = np.argsort(-flat, kind="mergesort")
    for k in range(order.size):
        if done[order[k]]:
            continue
        done[order[k]] = True
        keys[0], items[0], size = flat[order[k]], order[k], 1
        while size > 0:
            here = items[0]
            size -= 1  # pop: move the last entry down from the top
            key, item, i = keys[size], items[size], 0
            while 2 * i + 1 < size:
                child = 2 * i + 1
                if child + 1 < size and keys[child + 1] > keys[child]:
                    child += 1
                if keys[child] <= key:
                    break
                keys[i], items[i] = keys[child], items[child]
                i = child
            if size > 0:
                keys[i], items[i] = key, item
            f, t = here // frames, here % frames
            for step in range(4):  # the neighbours: next and previous frame, next and previous bin
                if step == 0:
                    there, inside, slope = here + 1, t + 1 < frames, time_slope
                elif step == 1:
                    there, inside, slope = here - 1, t >= 1, time_slope
                elif step == 2:
                    there, inside, slope = here + frames, f + 1 < bins, freq_slope
                else:
                    there, inside, slope = here - frames, f >= 1, freq_slope
                if not inside or done[there]:
                    continue
                change = 0.5 * (slope[here] + slope[there])
                phase[there] = phase[here] + (change if step % 2 == 0 else -change)
                done[there] = True
                i = size  # push: move it up from the bottom
                size += 1
                while i > 0 and keys[(i - 1) // 2] < flat[there]:
                    keys[i], items[i] = keys[(i - 1) // 2], items[(i - 1) // 2]
                    i = (i - 1) // 2
                keys[i], items[i] = flat[there], there
    return phase.reshape(bins, frames)


def _heap_integrate_c(magnitude: np.ndarray, dphase_time: np.ndarray, dphase_freq: np.ndarray,
                      tolerance: float) -> np.ndarray:
    """:func:`_heap_integrate_py` in C (``_heap_integrate.c``, built with the package): the same
    steps, so the same phase bit for bit, with no compiler start-up."""
    from diffusionkit_audio._heap_integrate import heap_integrate

    bins, frames = magnitude.shape
    flat = np.ascontiguousarray(magnitude, dtype=np.float64)
    order = np.ascontiguousarray(np.argsort(-flat.ravel(), kind="mergesort"), dtype=np.int64)
    phase = np.empty((bins, frames))
    heap_integrate(flat, np.ascontiguousarray(dphase_time, dtype=np.float64),
                   np.ascontiguousarray(dphase_freq, dtype=np.float64), order, bins, frames, float(tolerance), phase)
    return phase


@functools.cache
def _heap_integrate():
    """The fastest heap loop at hand: the C extension built with the package; else
    :func:`_heap_integrate_py` compiled by numba (a second to start in each process, and a few
    more the first time, before its disk cache exists); else the Python version."""
    try:
        import diffusionkit_audio._heap_integrate  # noqa: F401
        return _heap_integrate_c
    except ImportError:
        pass
    try:
        import numba
    except Exception:  # noqa: BLE001 - numba is an optional speed-up
        return _heap_integrate_py
    for cache in (True, False):  # caching needs a writable cache folder
        try:
            return numba.njit(cache=cache, nogil=True)(_heap_integrate_py)
        except Exception:  # noqa: BLE001
            continue
    return _heap_integrate_py


def phase_gradients(magnitude: np.ndarray, hop: int, n_fft: int, window_length: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The phase change per frame and per bin ``[bins, frames]`` (radians) that a Gaussian
    window's STFT of this magnitude has (Prusa et al. 2017, eqs. 20-21, discretised for a hop
    ``a`` and ``M = n_fft`` channels, centred frames):

        dphi/dn = a M / lambda * d log|c| / dm + 2 pi a m / M
        dphi/dm = -lambda / (a M) * d log|c| / dn

    with ``lambda = HANN_GAMMA * L**2`` for a Hann window of ``L`` samples."""
    lam = HANN_GAMMA * float(window_length or n_fft) ** 2
    log_mag = np.log(np.maximum(magnitude, 1e-30))
    bins, frames = magnitude.shape
    d_freq = np.gradient(log_mag, axis=0) if bins > 1 else np.zeros_like(log_mag)
    d_time = np.gradient(log_mag, axis=1) if frames > 1 else np.zeros_like(log_mag)
    m = np.arange(bins, dtype=np.float64)[:, None]
    dphase_time = hop * n_fft / lam * d_freq + 2.0 * math.pi * hop * m / n_fft
    dphase_freq = -lam / (hop * n_fft) * d_time
    return dphase_time, dphase_freq


def pghi_phase(magnitude: np.ndarray, hop: int, n_fft: int, tolerance_db: float = -60.0) -> np.ndarray:
    """The phase ``[bins, frames]`` that Phase Gradient Heap Integration (Prusa et al. 2017)
    gives one STFT magnitude (Hann window of ``n_fft``, hop ``hop``, centred frames as
    ``torch.stft(center=True)`` makes them). Coefficients more than ``-tolerance_db`` below the
    largest keep phase 0. The phase is referred to the frame's start, as ``torch.stft`` does
    (the derivation's frame-centred phase times ``(-1)**m``)."""
    magnitude = np.asarray(magnitude, dtype=np.float64)
    peak = float(magnitude.max(initial=0.0))
    if peak <= 0.0:
        return np.zeros_like(magnitude)
    dphase_time, dphase_freq = phase_gradients(magnitude, hop, n_fft)
    tolerance = peak * 10.0 ** (tolerance_db / 20.0)
    phase = _heap_integrate()(magnitude, dphase_time, dphase_freq, tolerance)
    return phase + math.pi * np.arange(magnitude.shape[0], dtype=np.float64)[:, None]


# --------------------------------------------------------------------------- Griffin-Lim


def fast_griffin_lim(magnitude: Tensor, phase: Tensor, n_fft: int, hop: int, window: Tensor, num_samples: int,
                     iterations: int, momentum: float = 0.99) -> Tensor:
    """Fast Griffin-Lim (Perraudin et al. 2013, Algorithm 2) from an initial ``phase``:
    ``c_n = P1(P2(t_{n-1}))``, ``t_n = c_n + momentum (c_n - c_{n-1})``, where ``P2`` makes a
    spectrogram consistent (STFT of its inverse STFT) and ``P1`` imposes ``magnitude``.
    ``magnitude`` and ``phase`` are ``[batch, bins, frames]``; returns ``[batch, num_samples]``."""
    def inverse(spec: Tensor) -> Tensor:
        return torch.istft(spec, n_fft, hop, window=window, center=True, length=num_samples)

    current = torch.polar(magnitude, phase)
    previous = current
    for _ in range(iterations):
        rebuilt = torch.stft(inverse(current), n_fft, hop, window=window, center=True, return_complex=True)
        projected = rebuilt.mul_(magnitude / rebuilt.abs().clamp_min_(1e-16))
        current = torch.add(projected, projected - previous, alpha=momentum)
        previous = projected
    return inverse(previous)
