"""Notes and standard MIDI files (written and read with mido), for a DAW."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import mido

from diffusionkit.modality import MediaError

TICKS_PER_BEAT = 480


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
