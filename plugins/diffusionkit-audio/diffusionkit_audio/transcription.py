"""Monophonic melody transcription: a waveform to MIDI notes.

:func:`transcribe` tracks the fundamental frequency with probabilistic YIN (pYIN: Mauch &
Dixon, "pYIN: A fundamental frequency estimator using probabilistic threshold
distributions", ICASSP 2014; ``librosa.pyin``), rounds every voiced frame to the nearest
MIDI pitch and turns runs of equal pitch into notes. Quiet frames (a release tail, which
pYIN voices however faint) count as unvoiced, and a run is split again where its level dips
and rises again or at a level-raising onset, so that repeated notes of one pitch come out
separate. :mod:`.midi` stores and loads the notes as standard MIDI files.
"""

from __future__ import annotations

import warnings

import librosa
import numpy as np
from scipy.fft import next_fast_len
from scipy.ndimage import maximum_filter1d, median_filter

from .midi import Note

#: the note RMS levels (dBFS, ``20 log10 rms``) mapped linearly to velocities 40 and 120;
#: levels outside are clamped. A full-scale sine (-3 dBFS) is velocity 120.
VELOCITY_DB = (-42.0, -3.0)
VELOCITY_RANGE = (40, 120)

#: level gate on voicing: a frame whose RMS (over pYIN's frame) lies more than GATE_DB below
#: the loudest frame within GATE_SPAN_S either side counts as unvoiced, however periodic it
#: is (pYIN ignores level, so a decaying release tail stays voiced at -80 dB).
GATE_DB = 40.0
GATE_SPAN_S = 0.5

#: a run of one pitch splits at a valley of its level envelope (ENVELOPE_STEPS points per
#: hop, each the RMS over whole periods of the run's pitch, at least half a hop): a local
#: minimum at least VALLEY_DB below the loudest point within VALLEY_SPAN_S on *each* side.
#: A release followed by a new attack dips that fast (a 4 ms gap between two sine notes
#: still dips ~3 dB); tremolo (even 8 dB deep at 10 Hz) and beating dip too slowly.
VALLEY_DB = 2.5
VALLEY_SPAN_S = 0.0125
ENVELOPE_STEPS = 4

#: an onset inside a run of one pitch splits it only where the level (RMS over one hop)
#: rises by this many dB from the quietest to the loudest frame within this many hops.
ONSET_RISE_DB = 3.0
ONSET_RISE_FRAMES = 3

#: a note start moves back to a spectral-flux onset at most this much earlier (seconds),
#: unless the level falls by more than ONSET_END_DB across it (a note's end, not an attack).
ONSET_SNAP_S = 0.05
ONSET_END_DB = -6.0


def _frame_length(sample_rate: int, fmin: float) -> int:
    """The smallest fast FFT size (a multiple of 4) holding two periods of ``fmin``, pYIN's
    recommendation: 500 samples at 16 kHz, 1372 at 44.1 kHz, ~31 ms at every rate."""
    size = next_fast_len(int(np.ceil(2.0 * sample_rate / fmin)) + 2)
    while size % 4:
        size = next_fast_len(size + 1)
    return size


def _velocity(segment: np.ndarray) -> int:
    rms = float(np.sqrt(np.mean(np.square(segment, dtype=np.float64)))) if segment.size else 0.0
    db = 20.0 * np.log10(rms) if rms > 0 else -np.inf
    lo_db, hi_db = VELOCITY_DB
    lo_v, hi_v = VELOCITY_RANGE
    frac = np.clip((db - lo_db) / (hi_db - lo_db), 0.0, 1.0)
    return int(round(lo_v + frac * (hi_v - lo_v)))


def _onset_levels(y: np.ndarray, onsets: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted unique onsets and each one's level change in dB: the loudest of the
    ``ONSET_RISE_FRAMES`` one-hop RMS frames from the onset on against the quietest of those
    up to it (``rise``, >= 0) and the mean level after against the mean before (``trend``,
    strongly negative at a note's end)."""
    rms = librosa.feature.rms(y=y, frame_length=hop, hop_length=hop, center=True)[0] + 1e-10
    k = ONSET_RISE_FRAMES
    onsets = np.unique(onsets).astype(np.int64)
    onsets = onsets[onsets < rms.size]  # onset_strength can report one frame past the end
    rise, trend = np.zeros(onsets.size), np.zeros(onsets.size)
    for i, o in enumerate(onsets):
        before, after = rms[max(0, o - k) : o + 1], rms[o : o + k + 1]
        rise[i] = 20.0 * np.log10(after.max() / before.min())
        trend[i] = 20.0 * np.log10(after[1:].mean() / before[:-1].mean()) if o > 0 and after.size > 1 else 0.0
    return onsets, rise, trend


def transcribe(
    wave: np.ndarray,
    sample_rate: int,
    fmin: float = 65.0,
    fmax: float = 2100.0,
    min_duration: float = 0.06,
) -> list[Note]:
    """Transcribe a monophonic melody into notes.

    Args:
        wave: ``[samples]`` or ``[channels, samples]`` (channels are mixed by their mean).
        sample_rate: the wave's rate in Hz.
        fmin, fmax: the pitch range searched, Hz (defaults C2..C7; pitches right at the
            edges track poorly: C7 itself comes out as a sub-harmonic); ``fmax`` is capped
            at 0.45 * ``sample_rate``.
        min_duration: notes shorter than this (seconds) are dropped.

    pYIN runs with a frame holding two periods of ``fmin`` (~31 ms: 500 samples at 16 kHz)
    and a hop of a quarter frame (~8 ms), at 0.2-semitone resolution. Voiced frames are
    rounded to MIDI pitches and median-filtered over 5 frames (removing one- or two-frame
    blips); frames more than 40 dB below the loudest frame within 0.5 s count as unvoiced
    (pYIN ignores level: an exponential release tail stays voiced far below audibility,
    which would join two notes of one pitch across their gap). A note is a run of voiced
    frames of one pitch, split where every part lasts at least ``min_duration``: first at
    valleys of the level envelope (a dip of 2.5 dB or more below the level within 12.5 ms
    on both sides: a release and a new attack, even across a 4 ms gap), then at onsets
    (``librosa.onset.onset_detect`` on the same hop) that are re-attacks (the level rises
    by 3 dB or more within 3 hops). A note spans ``[first frame, last frame + 1)`` in
    frame times. Since pYIN settles on a new pitch a few frames late, a note start moves
    back to an onset up to 50 ms earlier (not one where the level falls, which marks the
    previous note's end; not a start at a valley, already the attack), and
    ``min_duration`` applies to the note so moved. Velocity maps the note's RMS from
    -42..-3 dBFS linearly to 40..120.

    The first call in a process spends ~1.5 s compiling librosa's numba code; after that a
    2 s clip at 16 kHz takes ~0.2 s.

    Returns:
        Notes sorted by start; an empty list for a silent or unvoiced wave.
    """
    y = np.asarray(wave, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    if y.ndim != 1:
        raise ValueError(f"expected a wave [samples] or [channels, samples], got shape {np.shape(wave)}")
    if not np.isfinite(y).all():
        raise ValueError("the wave contains NaN or Inf samples")
    fmax = min(fmax, 0.45 * sample_rate)
    if not 0 < fmin < fmax:
        raise ValueError(f"need 0 < fmin < fmax (fmax capped at 0.45 * sample_rate), got {fmin}, {fmax}")
    if y.size == 0 or float(np.abs(y).max()) < 1e-5:
        return []
    frame_length = _frame_length(sample_rate, fmin)
    hop = frame_length // 4
    if y.size < frame_length:
        y = np.pad(y, (0, frame_length - y.size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. onset_detect's "n_fft too large" on short clips
        f0, voiced, _ = librosa.pyin(
            y,
            fmin=fmin,
            fmax=fmax,
            sr=sample_rate,
            frame_length=frame_length,
            hop_length=hop,
            resolution=0.2,
        )
        onsets = librosa.onset.onset_detect(y=y, sr=sample_rate, hop_length=hop, units="frames")
    onsets, rise, trend = _onset_levels(y, onsets, hop)
    reattacks = onsets[rise >= ONSET_RISE_DB]  # splits a run of one pitch
    attacks = onsets[trend > ONSET_END_DB]  # may move a note start earlier; not note ends
    voiced = voiced & np.isfinite(f0) & _loud_enough(y, frame_length, hop, sample_rate, f0.size)
    pitch = np.full(f0.shape, -1, dtype=np.int64)
    pitch[voiced] = np.clip(np.round(librosa.hz_to_midi(f0[voiced])), 0, 127).astype(np.int64)
    min_frames = min_duration * sample_rate / hop
    # a median filter removes blips of a frame or two (octave slips, voicing drop-outs)
    # inside a note without moving the edges of longer runs
    kernel = int(min(5, min_frames))
    kernel -= 1 - kernel % 2
    if kernel >= 3:
        pitch = median_filter(pitch, size=kernel, mode="nearest")

    power = np.concatenate([[0.0], np.cumsum(np.square(y, dtype=np.float64))])
    max_shift = round(ONSET_SNAP_S * sample_rate / hop)
    segments = _segments(pitch, reattacks, min_frames, power, hop, sample_rate, attacks, max_shift)
    _snap_to_onsets(segments, attacks, max_shift, min_frames)
    segments = [span for span in segments if span[1] - span[0] >= min_frames]
    notes = []
    for s, e, p, _ in segments:
        segment = y[s * hop : min(e * hop, y.size)]
        start, end = s * hop / sample_rate, e * hop / sample_rate
        notes.append(Note(start=float(start), end=float(end), pitch=p, velocity=_velocity(segment)))
    return notes


def _loud_enough(y: np.ndarray, frame_length: int, hop: int, sample_rate: int, frames: int) -> np.ndarray:
    """Per pYIN frame: is its RMS within ``GATE_DB`` of the loudest frame within
    ``GATE_SPAN_S`` either side (the voicing gate)."""
    rms = librosa.feature.rms(y=y, frame_length=frame_length, hop_length=hop, center=True)[0]
    db = 20.0 * np.log10(rms[:frames] + 1e-10)
    span = 2 * round(GATE_SPAN_S * sample_rate / hop) + 1
    loud = db >= maximum_filter1d(db, size=span, mode="nearest") - GATE_DB
    return np.pad(loud, (0, frames - loud.size), constant_values=False)


def _envelope_db(power: np.ndarray, centers: np.ndarray, width: int) -> np.ndarray:
    """Level in dB around the sample positions ``centers``, over ``width`` samples, from the
    cumulative power ``power`` (``power[i]``: the sum of the first ``i`` squared samples)."""
    n = power.size - 1
    hi = np.clip(centers - width // 2 + width, min(width, n), n)
    lo = hi - min(width, n)
    return 10.0 * np.log10((power[hi] - power[lo]) / max(1, min(width, n)) + 1e-20)


def _valleys(env: np.ndarray, span: int) -> list[tuple[float, int]]:
    """``(depth, index)`` of the local minima of ``env`` lying at least ``VALLEY_DB`` below
    its maximum within ``span`` points on each side (depth: the smaller of the two rises)."""
    if env.size < 3:
        return []
    pad = np.full(span, -np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(np.concatenate([pad, env, pad]), span).max(axis=1)
    v = np.arange(1, env.size - 1)
    left, right = windows[v], windows[v + span + 1]  # max of env[v - span : v], env[v + 1 : v + span + 1]
    depth = np.minimum(left, right) - env[v]
    keep = (env[v] < env[v - 1]) & (env[v] <= env[v + 1]) & (depth >= VALLEY_DB)
    return [(float(d), int(i)) for d, i in zip(depth[keep], v[keep])]


def _segments(
    pitch: np.ndarray,
    reattacks: np.ndarray,
    min_frames: float,
    power: np.ndarray,
    hop: int,
    sample_rate: int,
    attacks: np.ndarray,
    max_shift: int,
) -> list[list[int]]:
    """``[start, stop, pitch, snap]`` frame spans: runs of one voiced pitch, split first at
    the valleys of their level envelope (deepest first), then at re-attacks, wherever every
    part keeps ``min_frames``; spans shorter than ``min_frames`` are dropped. ``snap`` is 0
    for a span starting at a valley (already the new note's attack: no onset snapping).

    A run's first part is measured from the attack onset its start will snap back to (see
    :func:`_snap_to_onsets`), so that a short note followed by a repeat of its pitch (pYIN
    voices it late, and the valley comes early) still splits off.
    """
    change = np.flatnonzero(np.diff(pitch) != 0) + 1
    bounds = np.concatenate([[0], change, [pitch.size]]).astype(int)
    span = max(1, round(VALLEY_SPAN_S * sample_rate / hop * ENVELOPE_STEPS))
    spans: list[list[int]] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if pitch[a] < 0:
            continue
        # the level every 1/ENVELOPE_STEPS hop, over whole periods of the run's pitch (no
        # ripple from the waveform) at least half a hop long
        period = sample_rate / float(librosa.midi_to_hz(int(pitch[a])))
        width = round(period * np.ceil(hop / 2 / period))
        centers = np.round((a + np.arange((b - a) * ENVELOPE_STEPS) / ENVELOPE_STEPS) * hop).astype(np.int64)
        env = _envelope_db(power, centers, width)
        floor = a - max_shift
        if spans:
            floor = max(floor, spans[-1][0] + max(1, int(np.ceil(min_frames))))
        near = attacks[(attacks >= floor) & (attacks < a)]
        cuts, valley = [int(near.max()) if near.size else int(a), int(b)], set()

        def fits(c: int) -> bool:
            i = int(np.searchsorted(cuts, c))
            return c - cuts[i - 1] >= min_frames and cuts[i] - c >= min_frames

        for _, v in sorted(_valleys(env, span), reverse=True):
            c = a + round(v / ENVELOPE_STEPS)
            if fits(c):
                cuts.insert(int(np.searchsorted(cuts, c)), c)
                valley.add(c)
        for o in reattacks[(reattacks > a) & (reattacks < b)]:
            if fits(int(o)):
                cuts.insert(int(np.searchsorted(cuts, o)), int(o))
        first = cuts[0]
        cuts[0] = int(a)  # the snap itself happens later, on the kept spans
        spans += [
            [s, e, int(pitch[a]), int(s not in valley)]
            for s, e in zip(cuts[:-1], cuts[1:])
            if e - (first if s == a else s) >= min_frames
        ]
    return spans


def _snap_to_onsets(spans: list[list[int]], onsets: np.ndarray, max_shift: int, min_frames: float) -> None:
    """Move note starts back to the spectral-flux onset just before them, in place.

    pYIN's smoothed track reaches a new pitch a few frames late, and at a leap it often
    passes through unvoiced frames first (an octave leap starts ~40 ms late at 16 kHz);
    the onset marks the attack itself. A span starts at the latest onset at most
    ``max_shift`` frames before it, provided the previous span keeps ``min_frames``
    (it is shortened to end there if they would overlap).
    """
    for i, cur in enumerate(spans):
        if not cur[3]:
            continue
        floor = cur[0] - max_shift
        if i:
            floor = max(floor, spans[i - 1][0] + max(1, int(np.ceil(min_frames))))
        near = onsets[(onsets >= floor) & (onsets < cur[0])]
        if near.size:
            cur[0] = int(near.max())
            if i:
                spans[i - 1][1] = min(spans[i - 1][1], cur[0])
