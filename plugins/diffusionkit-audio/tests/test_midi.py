"""midi: pYIN melody transcription of rendered phrases, and MIDI file writing/reading."""

from __future__ import annotations

import mido
import numpy as np
import pytest
from diffusionkit_audio.midi import Note, read_midi, write_midi
from diffusionkit_audio.synth_melodies import random_phrase, render_phrase
from diffusionkit_audio.transcription import transcribe

from diffusionkit.modality import MediaError

SR = 16000
TICK_120 = 0.5 / 480  # seconds per tick at 120 bpm, 480 ticks per beat

#: (pitch, start, end, amplitude): gaps, a leap of a fifth, and two back-to-back G4s
PHRASE = [
    (60, 0.10, 0.40, 0.5),
    (64, 0.50, 0.80, 0.3),
    (67, 0.90, 1.15, 0.5),
    (67, 1.15, 1.40, 0.5),
    (72, 1.50, 1.85, 0.2),
]


def render(notes, rate: int = SR, seconds: float = 2.0) -> np.ndarray:
    """Plucked-style notes (5 ms attack, 0.3 s decay, 10 ms release, 3 harmonics)."""
    y = np.zeros(round(seconds * rate))
    for pitch, start, end, amp in notes:
        f = 440.0 * 2 ** ((pitch - 69) / 12)
        n = round((end - start) * rate)
        t = np.arange(n) / rate
        release = np.minimum(1, (n - 1 - np.arange(n)) / (0.01 * rate))
        env = np.minimum(1, t / 0.005) * np.exp(-t / 0.3) * release
        harmonics = sum(w * np.sin(2 * np.pi * k * f * t) for k, w in ((1, 1.0), (2, 0.4), (3, 0.2)))
        s = round(start * rate)
        y[s : s + n] += amp * env * harmonics
    return y.astype(np.float32)


def legato(notes, rate: int = SR, vibrato: float = 0.0) -> np.ndarray:
    """Phase-continuous (pitch, seconds) notes without breaks, optional 5.5 Hz vibrato
    of ``vibrato`` semitones, 3 harmonics."""
    f = np.concatenate([np.full(round(d * rate), 440.0 * 2 ** ((m - 69) / 12)) for m, d in notes])
    f = f * 2 ** (vibrato * np.sin(2 * np.pi * 5.5 * np.arange(f.size) / rate) / 12)
    phase = 2 * np.pi * np.cumsum(f) / rate
    return (0.4 * (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase))).astype(np.float32)


@pytest.fixture(scope="module")
def phrase_notes():
    return transcribe(render(PHRASE), SR)


# --- transcription ----------------------------------------------------------------------------


def test_phrase_pitches_are_exact(phrase_notes):
    assert [n.pitch for n in phrase_notes] == [p for p, *_ in PHRASE]


def test_phrase_onsets_within_40ms_and_offsets_within_50ms(phrase_notes):
    assert len(phrase_notes) == len(PHRASE)
    for note, (_, start, end, _) in zip(phrase_notes, PHRASE):
        assert note.start == pytest.approx(start, abs=0.04)
        assert note.end == pytest.approx(end, abs=0.05)


def test_repeated_pitch_is_two_notes(phrase_notes):
    g1, g2 = phrase_notes[2], phrase_notes[3]
    assert g1.pitch == g2.pitch == 67
    assert g1.end <= g2.start
    assert g2.start == pytest.approx(1.15, abs=0.025)


@pytest.mark.parametrize("vibrato", [0.0, 0.2])
def test_legato_phrase(vibrato):
    """No breaks between notes, an octave drop at 1.5 s: no spurious splits of held notes
    (spectral-flux onsets fire inside them), and pitch changes on time (pYIN alone is
    ~40 ms late on the octave drop; the start moves back to its onset)."""
    seq = [(62, 0.4), (64, 0.3), (65, 0.3), (67, 0.5), (55, 0.5)]
    notes = transcribe(legato(seq, vibrato=vibrato), SR)
    assert [n.pitch for n in notes] == [m for m, _ in seq]
    starts = np.cumsum([0.0] + [d for _, d in seq[:-1]])
    np.testing.assert_allclose([n.start for n in notes], starts, atol=0.02)
    assert all(a.end <= b.start for a, b in zip(notes, notes[1:]))


def test_timbre_change_inside_a_held_note_does_not_split_it():
    """A3 held 1 s whose 2nd harmonic turns into a 5th at 0.5 s, same level: spectral flux
    marks an onset there, but without a level rise it is no re-attack."""
    t = np.arange(SR) / SR
    phase = 2 * np.pi * 220 * t
    bright = t >= 0.5
    held = 0.4 * (np.sin(phase) + 0.6 * np.where(bright, np.sin(5 * phase), np.sin(2 * phase)))
    wave = np.concatenate([np.zeros(1600), held, np.zeros(1600)])
    notes = transcribe(wave, SR)
    assert [(n.pitch, round(n.start, 1), round(n.end, 1)) for n in notes] == [(57, 0.1, 1.1)]


def test_note_after_a_short_gap_starts_at_its_attack():
    """40 ms between two notes: the second must not start at the first one's end (an onset too)."""
    notes = transcribe(render([(67, 0.1, 0.4, 0.5), (72, 0.44, 0.8, 0.5)], seconds=1.0), SR)
    assert [n.pitch for n in notes] == [67, 72]
    assert notes[1].start == pytest.approx(0.44, abs=0.015)


def test_velocity_follows_level(phrase_notes):
    velocities = [n.velocity for n in phrase_notes]
    assert all(40 <= v <= 120 for v in velocities)
    assert velocities[0] > velocities[1] > velocities[4]  # amplitudes 0.5 > 0.3 > 0.2


def test_velocity_of_a_steady_sine_matches_the_mapping():
    """A 0.5-amplitude sine is -9.03 dBFS RMS: 40 + 80 * (42 - 9.03) / 39 = 107.6 -> 108."""
    t = np.arange(int(0.6 * SR)) / SR
    wave = np.concatenate([np.zeros(1600), 0.5 * np.sin(2 * np.pi * 440 * t), np.zeros(1600)])
    (note,) = transcribe(wave, SR)
    assert note.pitch == 69
    assert note.velocity == pytest.approx(108, abs=1)


@pytest.mark.parametrize("rate", [8000, 44100])
def test_other_rates(rate):
    notes = transcribe(render(PHRASE, rate), rate)
    assert [n.pitch for n in notes] == [p for p, *_ in PHRASE]
    assert max(abs(n.start - s) for n, (_, s, _, _) in zip(notes, PHRASE)) < 0.04


def test_stereo_input_is_mixed():
    mono = render(PHRASE[:2])
    assert transcribe(np.stack([mono, mono]), SR) == transcribe(mono, SR)


def test_short_notes_are_dropped_by_min_duration():
    """A 30 ms blip (tracked as ~47 ms: pYIN's 31 ms frames widen notes) before a note."""
    wave = render([(62, 0.2, 0.23, 0.5), (65, 0.6, 0.9, 0.5)], seconds=1.2)
    assert [n.pitch for n in transcribe(wave, SR)] == [65]
    notes = transcribe(wave, SR, min_duration=0.03)
    assert [n.pitch for n in notes] == [62, 65]
    assert notes[0].duration == pytest.approx(0.03, abs=0.03)


def test_silence_and_noise_give_no_notes():
    assert transcribe(np.zeros(SR, np.float32), SR) == []
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    assert transcribe(noise, SR) == []


def test_pitch_range_limits_transcription():
    high = render([(93, 0.1, 0.5, 0.5)], seconds=0.7)  # A6, 1760 Hz: inside the default range
    assert [n.pitch for n in transcribe(high, SR)] == [93]
    assert all(n.pitch != 93 for n in transcribe(high, SR, fmax=1000.0))
    low = render([(38, 0.1, 0.5, 0.5)], seconds=0.7)  # D2, 73 Hz: just above fmin 65
    assert [n.pitch for n in transcribe(low, SR)] == [38]


def synth_phrase(seed: int, timbre: str):
    """``random_phrase`` seed ``seed`` (2 s) rendered with ``timbre`` at 16 kHz: (phrase, wave)."""
    rng = np.random.default_rng(seed)
    phrase = random_phrase(rng, 2.0)
    return phrase, render_phrase(phrase, timbre, rng, SR, 32256)


def has_repeats(phrase) -> bool:
    return any(a[2] == b[2] for a, b in zip(phrase, phrase[1:]))


def phrase_matches(phrase, notes) -> bool:
    """The exact pitch sequence (repeated notes included) with every onset within 40 ms."""
    return [n.pitch for n in notes] == [p for *_, p in phrase] and all(
        abs(n.start - start) < 0.04 for n, (start, _, _) in zip(notes, phrase)
    )


def test_rendered_sine_phrases_keep_repeated_notes():
    """Seeds 0..19, 13 of them with repeated notes (22 repeats, gaps of 4 to 175 ms; sine release
    tails that stay voiced for pYIN): measured 20/20 exact, onsets within 16 ms (before the
    level gate and valley splits: 14/20, all 6 failures merged repeats)."""
    phrases = [synth_phrase(seed, "sine") for seed in range(20)]
    assert sum(has_repeats(phrase) for phrase, _ in phrases) == 13
    matched = [seed for seed, (phrase, wave) in enumerate(phrases) if phrase_matches(phrase, transcribe(wave, SR))]
    assert len(matched) >= 19, f"only seeds {matched} match"


@pytest.mark.parametrize("timbre", ["square", "saw"])
def test_rendered_phrases_with_repeats_other_timbres(timbre):
    """The phrases with repeated notes among seeds 0..9 (measured: all of seeds 0..99 match
    for both timbres; before: square failed seed 3, saw seeds 0, 1 and 3)."""
    phrases = [p for p in (synth_phrase(seed, timbre) for seed in range(10)) if has_repeats(p[0])]
    assert len(phrases) == 5
    for phrase, wave in phrases:
        notes = transcribe(wave, SR)
        assert phrase_matches(phrase, notes), ([p for *_, p in phrase], [(n.pitch, round(n.start, 3)) for n in notes])


@pytest.mark.parametrize("gap", [0.004, 0.06])
def test_repeated_sine_note_splits_across_a_short_or_long_gap(gap):
    """4 ms: the release barely dips before the next attack (a valley of ~3 dB); 60 ms: the
    exponential release tail is still periodic (voiced for pYIN) until the level gate."""
    phrase = [(0.1, 0.5, 69), (0.5 + gap, 0.9, 69)]
    notes = transcribe(render_phrase(phrase, "sine", np.random.default_rng(0), SR, SR), SR)
    assert [n.pitch for n in notes] == [69, 69]
    assert notes[0].end <= notes[1].start
    assert notes[1].start == pytest.approx(0.5 + gap, abs=0.015)


def test_release_tail_ends_the_note():
    """An A4 released at 0.7 s with a 10 ms exponential decay over 0.3 s: pYIN voices the
    whole tail; the level gate ends the note once it is 40 dB down (~50 ms later)."""
    t = np.arange(int(0.6 * SR)) / SR
    tail_t = t[-1] + np.arange(1, int(0.3 * SR) + 1) / SR
    tail = 0.5 * np.sin(2 * np.pi * 440 * tail_t) * np.exp(-(tail_t - t[-1]) / 0.01)
    wave = np.concatenate([np.zeros(1600), 0.5 * np.sin(2 * np.pi * 440 * t), tail, np.zeros(1600)])
    (note,) = transcribe(wave, SR)
    assert note.pitch == 69
    assert 0.7 <= note.end < 0.78


@pytest.mark.parametrize("rate_hz", [5.5, 10.0])
def test_tremolo_does_not_split_a_held_note(rate_hz):
    """A3 held 1.5 s with an 8 dB (peak to trough) tremolo: its dips are far slower than a
    release and a new attack, so no valley splits it."""
    t = np.arange(int(1.5 * SR)) / SR
    m = (10 ** (8 / 20) - 1) / (10 ** (8 / 20) + 1)
    held = 0.4 * (1 + m * np.sin(2 * np.pi * rate_hz * t)) * np.sin(2 * np.pi * 220 * t)
    notes = transcribe(np.concatenate([np.zeros(1600), held, np.zeros(1600)]), SR)
    assert [(n.pitch, round(n.start, 1), round(n.end, 1)) for n in notes] == [(57, 0.1, 1.6)]


def test_onset_in_the_last_frame():
    """A steady tone filling the clip: onset_detect reports an onset one frame past the
    level frames; it used to raise in the re-attack test."""
    notes = transcribe((0.1 * np.sin(np.arange(SR) * 0.2)).astype(np.float32), SR)
    assert [n.pitch for n in notes] == [71]


def test_bad_input():
    with pytest.raises(ValueError, match="NaN or Inf"):
        transcribe(np.array([0.0, np.nan] * 1000), SR)
    with pytest.raises(ValueError, match="fmin < fmax"):
        transcribe(np.zeros(100), SR, fmin=500.0, fmax=400.0)


# --- MIDI files -------------------------------------------------------------------------------

NOTES = [
    Note(0.0, 0.25, 60, 100),
    Note(0.25, 0.5, 60, 90),  # back to back, same pitch
    Note(0.5123, 0.9001, 64, 64),
    Note(0.7, 1.3337, 67, 1),  # overlaps the previous note
    Note(1.5, 1.75, 127, 127),
]


def assert_notes_close(got, want, tick):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g.pitch, g.velocity) == (w.pitch, w.velocity)
        assert g.start == pytest.approx(w.start, abs=tick)
        assert g.end == pytest.approx(w.end, abs=tick)


def test_round_trip_within_a_tick(tmp_path):
    path = write_midi(NOTES, tmp_path / "sub" / "melody.mid")
    assert path == tmp_path / "sub" / "melody.mid"
    assert_notes_close(read_midi(path), NOTES, TICK_120)


@pytest.mark.parametrize("bpm", [90.0, 137.5])
def test_round_trip_at_other_tempi(tmp_path, bpm):
    path = write_midi(NOTES, tmp_path / "t.mid", bpm=bpm)
    assert_notes_close(read_midi(path), NOTES, 60.0 / bpm / 480)


def test_file_structure_parses_with_mido(tmp_path):
    path = write_midi(NOTES, tmp_path / "m.mid", bpm=120.0, program=33)
    midi = mido.MidiFile(path)
    assert midi.type == 0 and midi.ticks_per_beat == 480 and len(midi.tracks) == 1
    track = midi.tracks[0]
    assert track[0].type == "set_tempo" and track[0].tempo == 500_000
    assert track[1].type == "program_change" and track[1].program == 33
    assert track[-1].type == "end_of_track"
    ons = [m for m in track if m.type == "note_on"]
    offs = [m for m in track if m.type == "note_off"]
    assert len(ons) == len(offs) == len(NOTES)
    # absolute ticks from the delta times
    ticks, now = [], 0
    for m in track:
        now += m.time
        ticks.append((now, m))
    on_ticks = sorted(t for t, m in ticks if m.type == "note_on")
    assert on_ticks == sorted(round(n.start * 960) for n in NOTES)  # 960 ticks per second
    assert now == round(1.75 * 960)
    # at tick 240 the first C4 ends before the second begins
    at_240 = [m.type for t, m in ticks if t == 240]
    assert at_240 == ["note_off", "note_on"]
    assert midi.length == pytest.approx(1.75, abs=TICK_120)


def test_transcription_to_midi_and_back(tmp_path, phrase_notes):
    path = write_midi(phrase_notes, tmp_path / "phrase.mid")
    assert_notes_close(read_midi(path), phrase_notes, TICK_120)


def test_empty_note_list_writes_a_valid_file(tmp_path):
    path = write_midi([], tmp_path / "empty.mid")
    assert read_midi(path) == []
    assert [m.type for m in mido.MidiFile(path).tracks[0]] == ["set_tempo", "program_change", "end_of_track"]


def test_read_midi_honours_tempo_changes_and_running_notes(tmp_path):
    """Type 1, two tracks: 120 bpm then 60 bpm after one beat; note_on velocity 0 ends a note."""
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    meta = mido.MidiTrack(
        [mido.MetaMessage("set_tempo", tempo=500_000), mido.MetaMessage("set_tempo", tempo=1_000_000, time=480)]
    )
    notes = mido.MidiTrack(
        [
            mido.Message("note_on", note=62, velocity=80, time=240),  # 0.25 s
            mido.Message("note_on", note=62, velocity=0, time=480),  # tick 720: 0.5 + 0.5 = 1.0 s
            mido.Message("note_on", note=70, velocity=50, channel=3, time=0),
            mido.Message("note_off", note=70, channel=3, time=960),  # tick 1680: 1.0 + 2.0 = 3.0 s
        ]
    )
    midi.tracks += [meta, notes]
    midi.save(tmp_path / "t1.mid")
    got = read_midi(tmp_path / "t1.mid")
    assert [(n.pitch, n.velocity) for n in got] == [(62, 80), (70, 50)]
    assert [n.start for n in got] == pytest.approx([0.25, 1.0])
    assert [n.end for n in got] == pytest.approx([1.0, 3.0])


def test_read_midi_errors(tmp_path):
    with pytest.raises(MediaError) as info:
        read_midi(tmp_path / "none.mid")
    assert str(info.value) == f"cannot read MIDI '{tmp_path / 'none.mid'}': no such file"
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"RIFF not midi at all" * 10)
    with pytest.raises(MediaError) as info:
        read_midi(bad)
    assert str(info.value).startswith(f"cannot read MIDI '{bad}': not a valid MIDI file (")
    assert "\n" not in str(info.value)


def test_note_and_writer_validation(tmp_path):
    with pytest.raises(ValueError, match="pitch must be in 0..127"):
        Note(0.0, 1.0, 128, 100)
    with pytest.raises(ValueError, match="velocity must be in 1..127"):
        Note(0.0, 1.0, 60, 0)
    with pytest.raises(ValueError, match="0 <= start < end"):
        Note(1.0, 1.0, 60, 100)
    with pytest.raises(ValueError, match="program must be in 0..127"):
        write_midi(NOTES, tmp_path / "x.mid", program=128)
