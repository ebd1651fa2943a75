"""``label=auto`` on real drums from another source than Hydrogen's kits: the General MIDI drum
kits of the FluidR3 GM soundfont (Debian's ``fluid-soundfont-gm``, MIT licence), rendered note by
note with FluidSynth.

    apt-get install fluidsynth fluid-soundfont-gm
    python benchmarks/bench_gm_kits.py [--ckpt drums_starter] [--soundfont FILE] [--work DIR]

Without them it says so in one line.

Each GM drum kit (Standard, Room, Power, Electronic, TR-808, Jazz, Brush: the General MIDI bank
128 programs) plays every note of the 8 classes (kick 35/36, snare 38/40, side stick 37 as rim,
clap 39, closed hat 42, open hat 46, toms 41-50, crashes 49/57) at velocity 100, reverb and chorus
off; each note becomes a one-shot of ``WORK/kits/GM_<kit>/<class>/`` (``--work``, else a
temporary folder; a plain kit tree of ``data=drumkits``), which the bundle's own preprocessing
then reads (near-duplicates across kits, as the kits share samples, are dropped). The Orchestra kit is left out: its tom notes are
timpani. Prints ``label=auto`` (the bundle's recogniser) accuracy overall, balanced over classes,
per kit and per class, with what each class was heard as. The shipped starter's recogniser has
learned these kits (``bench_recognizer_sources.py`` measures it on a family it never heard).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import kits_parser, labelled_bundle, real_kits_dataset, report_auto_labels  # noqa: E402


SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
#: General MIDI bank 128 programs (drum kits)
KITS = {"Standard": 0, "Room": 8, "Power": 16, "Electronic": 24, "TR-808": 25, "Jazz": 32, "Brush": 40}
#: General MIDI percussion notes -> the starter's classes
NOTES = {35: "kick", 36: "kick", 38: "snare", 40: "snare", 37: "rim", 39: "clap", 42: "closed_hat", 46: "open_hat",
         41: "tom", 43: "tom", 45: "tom", 47: "tom", 48: "tom", 50: "tom", 49: "crash", 57: "crash"}
SECONDS_PER_NOTE, RATE = 3.0, 44100


def _varlen(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.insert(0, (n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out)


def midi_file(program: int) -> bytes:
    """A one-track MIDI file: drum program ``program`` on channel 10, then each of :data:`NOTES`
    for 0.1 s, one every :data:`SECONDS_PER_NOTE` (960 ticks per second)."""
    step, hold = int(SECONDS_PER_NOTE * 960), 96
    events = bytes([0x00, 0xC9, program])
    for i, note in enumerate(NOTES):
        events += _varlen(0 if i == 0 else step - hold) + bytes([0x99, note, 100])
        events += _varlen(hold) + bytes([0x89, note, 0])
    events += _varlen(step) + bytes([0xFF, 0x2F, 0x00])
    track = b"MTrk" + struct.pack(">I", len(events)) + events
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + track


def render_kits(soundfont: Path, work: Path) -> Path:
    """Every kit of :data:`KITS` as ``work/kits/GM_<kit>/<class>/<note>.wav``."""
    import soundfile as sf

    for kit, program in KITS.items():
        song, take = work / f"{kit}.mid", work / f"{kit}.wav"
        song.write_bytes(midi_file(program))
        subprocess.run(["fluidsynth", "-ni", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(RATE), "-F", str(take),
                        str(soundfont), str(song)], check=True, capture_output=True)
        audio, rate = sf.read(take, always_2d=True)
        audio = audio.mean(1)
        for i, (note, name) in enumerate(NOTES.items()):
            clip = audio[int(i * SECONDS_PER_NOTE * rate):int((i + 1) * SECONDS_PER_NOTE * rate)]
            path = work / "kits" / f"GM_{kit}" / name / f"{note}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, clip.astype(np.float32), rate)
    return work / "kits"


def main() -> None:
    parser = kits_parser(__doc__)
    parser.add_argument("--soundfont", default=SOUNDFONT)
    args = parser.parse_args()
    if shutil.which("fluidsynth") is None or not Path(args.soundfont).is_file():
        print(f"bench_gm_kits needs FluidSynth and the soundfont {args.soundfont}: "
              f"apt-get install fluidsynth fluid-soundfont-gm")
        return
    model = labelled_bundle(args.ckpt, args.work)
    with tempfile.TemporaryDirectory(prefix="bench_gm_kits_") as scratch:
        work = Path(args.work or scratch)
        work.mkdir(parents=True, exist_ok=True)
        dataset = real_kits_dataset(model, str(render_kits(Path(args.soundfont), work)))
    report_auto_labels(model, dataset, "GM kits")


if __name__ == "__main__":
    main()
