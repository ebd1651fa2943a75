"""``label=auto`` on real recorded kits that ship inside SoundFont files: Debian's
``avldrums.lv2-soundfont`` (GPL-2+), the AVL Drumkits' Red Zeppelin and Black Pearl, each drum
recorded at 5 velocities.

    apt-get install avldrums.lv2-soundfont
    python benchmarks/bench_sf2_kits.py [--ckpt drums_starter] [--soundfont FILE ...] [--work DIR]

Without them it says so in one line.

The recordings are read straight out of each file (its ``shdr`` sample headers and 16-bit
``smpl`` data, RIFF layout of the SoundFont 2.04 specification), not played through a
synthesiser. A sample's name ("51-ZildjianA24Ride-3": note, instrument, velocity layer) gives
its class through ``data=drumkits``' keyword table, plus a few words for names the files cut
at 20 letters ("SabianRockHatClos"); samples of no class the bundle knows (tambourine, gong, hat
swish...) are left out. Each kit becomes a plain kit tree ``WORK/kits/<kit>/<class>/`` that the
bundle's own preprocessing reads (``--work``, else a temporary folder).

Red Zeppelin (Ludwig drums, Zildjian cymbals) is no kit of ``hydrogen-drumkits``, so the
starter's diffusion model never heard it; Black Pearl is the same drum kit as Hydrogen's "The Black
Pearl 1.0", one of the starter's training kits (its hats, splash and clap are the very same
recordings). The starter's recogniser (``label=auto``) has learned both kits since: on the shipped
starter this prints its accuracy on kits it trained on; the README's figures from before, and
``bench_recognizer_sources.py``, say how it does on a family it never heard.
"""

from __future__ import annotations

import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import kits_parser, labelled_bundle, real_kits_dataset, report_auto_labels  # noqa: E402


SOUNDFONTS = ["/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2", "/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2"]
#: words of names the AVL files cut short ("...HatClos", "...HatSe-1": a semi-open hat is an open hat;
#: "...A20Cras-1", "...A10Spla-1", "...16FloorTo-1")
KEYWORDS = {"closed_hat": ["hat clos"], "pedal_hat": ["hat pe"], "open_hat": ["hat se"], "crash": ["cras", "spla"],
            "tom": ["floor to"]}
SAMPLE_HEADER = struct.Struct("<20sIIIIIBbHH")  # name, start, end, loop start, loop end, rate, pitch, cents, link, type


def riff_chunks(data: bytes, start: int, end: int):
    """(id, offset of the body, size) of each RIFF chunk between ``start`` and ``end``."""
    while start + 8 <= end:
        cid, size = data[start:start + 4], struct.unpack("<I", data[start + 4:start + 8])[0]
        yield cid, start + 8, size
        start += 8 + size + (size & 1)


def soundfont_samples(path: Path) -> list[tuple[str, int, np.ndarray]]:
    """(name, sample rate, mono float32 audio) of every sample in a SoundFont 2 file."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise SystemExit(f"{path}: not a SoundFont 2 file")
    parts = {}
    for cid, offset, size in riff_chunks(data, 12, len(data)):
        if cid == b"LIST":
            for sub, sub_offset, sub_size in riff_chunks(data, offset + 4, offset + size):
                parts[sub] = data[sub_offset:sub_offset + sub_size]
    pcm = np.frombuffer(parts[b"smpl"], dtype="<i2")
    samples = []
    for i in range(len(parts[b"shdr"]) // SAMPLE_HEADER.size - 1):  # the last header is the terminal "EOS"
        name, start, end, _, _, rate, _, _, _, kind = SAMPLE_HEADER.unpack_from(parts[b"shdr"], i * SAMPLE_HEADER.size)
        if kind & 0x8000 or not start < end <= len(pcm):  # a ROM sample (no data in the file), or a broken header
            continue
        samples.append((name.split(b"\0")[0].decode("latin1"), rate, pcm[start:end].astype(np.float32) / 32768.0))
    return samples


def instrument_of(sample_name: str) -> str:
    """"51-ZildjianA24Ride-3" -> "ZildjianA24Ride" (the note and the velocity layer dropped)."""
    parts = sample_name.split("-")
    if parts[0].isdigit():
        parts = parts[1:]
    if len(parts) > 1 and parts[-1].isdigit():
        parts = parts[:-1]
    return "-".join(parts) or sample_name


def write_kit(soundfont: Path, classes: list[str], out: Path) -> dict[str, int]:
    """The samples of ``soundfont`` of a class in ``classes`` as ``out/<class>/<sample>.wav``;
    returns the count per class."""
    import soundfile as sf

    from diffusionkit_audio.drum_names import KeywordTable

    table, counts = KeywordTable(KEYWORDS), {}
    for name, rate, audio in soundfont_samples(soundfont):
        kind = table.classify(instrument_of(name))
        if kind not in classes:
            continue
        path = out / kind / f"{name}.wav"
        if path.exists():  # two samples of one name (a stereo pair): the first stands for both
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio, rate)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def main() -> None:
    parser = kits_parser(__doc__)
    parser.add_argument("--soundfont", nargs="+", default=SOUNDFONTS)
    args = parser.parse_args()
    missing = [f for f in args.soundfont if not Path(f).is_file()]
    if missing:
        print(f"bench_sf2_kits needs the soundfonts {', '.join(missing)}: apt-get install avldrums.lv2-soundfont")
        return
    model = labelled_bundle(args.ckpt, args.work)
    with tempfile.TemporaryDirectory(prefix="bench_sf2_kits_") as scratch:
        kits = Path(args.work or scratch) / "kits"
        for soundfont in map(Path, args.soundfont):
            counts = write_kit(soundfont, list(model.classes), kits / soundfont.stem)
            print(f"{soundfont.name}: " + ", ".join(f"{name} {n}" for name, n in sorted(counts.items())))
        dataset = real_kits_dataset(model, str(kits))
    print()
    report_auto_labels(model, dataset, "SoundFont kits")


if __name__ == "__main__":
    main()
