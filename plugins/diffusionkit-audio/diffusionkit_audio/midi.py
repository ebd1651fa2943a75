"""Monophonic melody transcription to MIDI notes, and MIDI file writing/reading for a DAW.

:func:`transcribe` tracks the fundamental frequency with probabilistic YIN (pYIN: Mauch &
Dixon, "pYIN: A fundamental frequency estimator using probabilistic threshold
distributions", ICASSP 2014; ``librosa.pyin``), rounds every voiced frame to the nearest
MIDI pitch and turns runs of equal pitch into notes, split again at detected onsets so that
repeated notes of one pitch come out separate. :func:`write_midi` and :func:`read_midi`
store and load notes as standard MIDI files with mido.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import librosa
import mido
import numpy as np
from scipy.fft import next_fast_len
from scipy.ndimage import median_filter

from diffusionkit.modality import MediaError

TICKS_PER_BEAT = 480

#: the note RMS levels (dBFS, ``20 log10 rms``) mapped linearly to velocities 40 and 120;
#: levels outside are clamped. A full-scale sine (-3 dBFS) is velocity 120.
VELOCITY_DB = (-42.0, -3.0)
VELOCITY_RANGE = (40, 120)

#: an onset inside a run of one pitch splits it only where the level (RMS over one hop)
#: rises by this many dB from the quietest to the loudest frame within this many hops.
ONSET_RISE_DB = 3.0
ONSET_RISE_FRAMES = 3

#: a note start moves back to a spectral-flux onset at most this much earlier (seconds),
#: unless the level falls by more than ONSET_END_DB across it (a note's end, not an attack).
ONSET_SNAP_S = 0.05
ONSET_END_DB = -6.0


@dataclass(frozen=True)
class Note:
    """One note: ``start``/``end`` in seconds, MIDI ``pitch`` 0..127, ``velocity`` 1..127."""

    start: float
    end: float
    pitch: int
    velocity: int

    def __post_init__(self) -> None:
        if not 0 <= self.pitch <= 127:
            raise ValueError(f"note pitch must be in 0..127, got {self.pitch}")
        if not 1 <= self.velocity <= 127:
            raise ValueError(f"note velocity must be in 1..127, got {self.velocity}")
        if not 0.0 <= self.start < self.end:
            raise ValueError(f"a note needs 0 <= start < end, got start={self.start}, end={self.end}")

    @property
    def duration(self) -> float:
        return self.end - self.start


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
    blips). A note is a run of voiced frames of one pitch, split at onsets
    (``librosa.onset.onset_detect`` on the same hop) that are re-attacks (the level rises
    by 3 dB or more within 3 hops) where both parts last at least ``min_duration``; it
    spans ``[first frame, last frame + 1)`` in frame times. Since pYIN settles on a new
    pitch a few frames late, a note start moves back to an onset up to 50 ms earlier
    (not one where the level falls, which marks the previous note's end). Velocity maps
    the note's RMS from -42..-3 dBFS linearly to 40..120.

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
    voiced = voiced & np.isfinite(f0)
    pitch = np.full(f0.shape, -1, dtype=np.int64)
    pitch[voiced] = np.clip(np.round(librosa.hz_to_midi(f0[voiced])), 0, 127).astype(np.int64)
    min_frames = min_duration * sample_rate / hop
    # a median filter removes blips of a frame or two (octave slips, voicing drop-outs)
    # inside a note without moving the edges of longer runs
    kernel = int(min(5, min_frames))
    kernel -= 1 - kernel % 2
    if kernel >= 3:
        pitch = median_filter(pitch, size=kernel, mode="nearest")

    segments = _segments(pitch, reattacks, min_frames)
    _snap_to_onsets(segments, attacks, round(ONSET_SNAP_S * sample_rate / hop), min_frames)
    notes = []
    for s, e, p in segments:
        segment = y[s * hop : min(e * hop, y.size)]
        start, end = s * hop / sample_rate, e * hop / sample_rate
        notes.append(Note(start=float(start), end=float(end), pitch=p, velocity=_velocity(segment)))
    return notes


def _segments(pitch: np.ndarray, reattacks: np.ndarray, min_frames: float) -> list[list[int]]:
    """``[start, stop, pitch]`` frame spans: runs of one voiced pitch, split at re-attacks
    where both parts keep ``min_frames``, without the spans shorter than ``min_frames``."""
    change = np.flatnonzero(np.diff(pitch) != 0) + 1
    bounds = np.concatenate([[0], change, [pitch.size]]).astype(int)
    spans = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if pitch[a] < 0:
            continue
        cuts = [a]
        for o in reattacks[(reattacks > a) & (reattacks < b)]:
            if o - cuts[-1] >= min_frames and b - o >= min_frames:
                cuts.append(int(o))
        cuts.append(b)
        spans += [[s, e, int(pitch[a])] for s, e in zip(cuts[:-1], cuts[1:]) if e - s >= min_frames]
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
        floor = cur[0] - max_shift
        if i:
            floor = max(floor, spans[i - 1][0] + max(1, int(np.ceil(min_frames))))
        near = onsets[(onsets >= floor) & (onsets < cur[0])]
        if near.size:
            cur[0] = int(near.max())
            if i:
                spans[i - 1][1] = min(spans[i - 1][1], cur[0])


def _tempo(bpm: float) -> int:
    if not 1.0 <= bpm <= 1000.0:
        raise ValueError(f"bpm must be in 1..1000, got {bpm}")
    return mido.bpm2tempo(bpm)


def write_midi(notes: Sequence[Note], path: str | Path, bpm: float = 120.0, program: int = 0) -> Path:
    """Write notes as a type-0 standard MIDI file (480 ticks per beat, channel 1).

    The track holds the tempo (``bpm``), a program change (General MIDI ``program`` 0..127,
    0 = acoustic grand piano), the notes as note_on/note_off pairs (a note_off sorts before
    a note_on at the same tick, so back-to-back notes of one pitch stay separate; every note
    lasts at least one tick) and end_of_track. Parent folders are created.
    """
    if not 0 <= program <= 127:
        raise ValueError(f"program must be in 0..127, got {program}")
    path = Path(path)
    tempo = _tempo(bpm)

    def tick(seconds: float) -> int:
        return int(round(mido.second2tick(seconds, TICKS_PER_BEAT, tempo)))

    events: list[tuple[int, int, mido.Message]] = []  # (tick, order, message): offs first
    for note in notes:
        on = tick(note.start)
        off = max(tick(note.end), on + 1)
        events.append((on, 1, mido.Message("note_on", note=note.pitch, velocity=note.velocity)))
        events.append((off, 0, mido.Message("note_off", note=note.pitch, velocity=0)))
    events.sort(key=lambda ev: (ev[0], ev[1]))

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    track.append(mido.Message("program_change", program=program, time=0))
    now = 0
    for at, _, message in events:
        track.append(message.copy(time=at - now))
        now = at
    track.append(mido.MetaMessage("end_of_track", time=0))
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        midi.save(path)
    except OSError as exc:
        raise MediaError(f"cannot write MIDI '{path}': {exc.strerror or exc}") from exc
    return path


def read_midi(path: str | Path) -> list[Note]:
    """Read the notes of a MIDI file (all tracks and channels, tempo changes honoured).

    A note_on with velocity 0 counts as a note_off; overlapping notes of one pitch and
    channel are paired first-in, first-out; notes still sounding at the end are closed at
    the last event. Returns notes sorted by (start, pitch).
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"cannot read MIDI '{path}': no such file")
    try:
        midi = mido.MidiFile(path)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MediaError(f"cannot read MIDI '{path}': not a valid MIDI file ({text})") from exc
    tempo = 500_000  # MIDI default: 120 bpm
    seconds = 0.0
    sounding: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes: list[Note] = []
    for message in mido.merge_tracks(midi.tracks):
        seconds += mido.tick2second(message.time, midi.ticks_per_beat, tempo)
        if message.type == "set_tempo":
            tempo = message.tempo
        elif message.type == "note_on" and message.velocity > 0:
            sounding.setdefault((message.channel, message.note), []).append((seconds, message.velocity))
        elif message.type in ("note_on", "note_off"):
            queue = sounding.get((message.channel, message.note))
            if queue:
                start, velocity = queue.pop(0)
                if seconds > start:
                    notes.append(Note(start, seconds, message.note, velocity))
    for (_, pitch), queue in sounding.items():
        for start, velocity in queue:
            if seconds > start:
                notes.append(Note(start, seconds, pitch, velocity))
    return sorted(notes, key=lambda n: (n.start, n.pitch))
