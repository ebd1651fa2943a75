"""Tiny drum kits in every format the drumkits data reads, written into a test's folder.

``write_tiny_kits(folder)`` makes ``folder/kits`` with:

- ``NewKit``: a Hydrogen 0.9.7+ kit (namespaced drumkit.xml, ``<instrumentComponent><layer>``):
  two kick layers (WAV 44.1 kHz), a snare rimshot (FLAC 48 kHz stereo), a closed hat, a cowbell
  (a class not kept by default), an instrument no keyword matches, a silent layer and a copy of
  the first kick at -6 dB (dropped as silent and duplicate);
- ``OldKit``: an old kit (no namespace, ``<filename>`` right under ``<instrument>``): kick,
  snare, open hat (the kick starts after 0.2 s of silence: onset alignment);
- ``Archived.h2drumkit``: a tar.gz of a kit folder (``<layer><filename>``): bass drum, hand clap;
- ``PlainKit``: ``Kicks/``, ``Snares/``, ``Side Stick/`` folders of WAV files.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf

NAMESPACE = 'xmlns="http://www.hydrogen-music.org/drumkit" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def hit(kind: str, seed: int, rate: int = 44100, seconds: float = 0.6) -> np.ndarray:
    """A synthetic one-shot: ``kick`` (falling sine), ``snare``/``clap``/``hat`` (noise bursts), ``bell``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    if kind == "kick":
        tone = np.sin(2 * np.pi * (50 + 60 * rng.random()) * t + 30 * (1 - np.exp(-t * 30)))
        return (0.8 * tone * np.exp(-t * 8)).astype(np.float32)
    if kind == "bell":
        return (0.5 * np.sin(2 * np.pi * (540 + 100 * rng.random()) * t) * np.exp(-t * 6)).astype(np.float32)
    decay = {"snare": 18, "clap": 25, "hat": 60}[kind]
    noise = rng.standard_normal(t.size)
    if kind == "hat":
        noise = np.diff(noise, prepend=0.0)
    body = 0.3 * np.sin(2 * np.pi * 190 * t) if kind == "snare" else 0.0
    return (0.3 * (noise + body) * np.exp(-t * decay)).astype(np.float32)


def write(path: Path, wave: np.ndarray, rate: int = 44100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.T if wave.ndim == 2 else wave, rate)
    return path


def _instrument(name: str, files: list[str], new_format: bool) -> str:
    if new_format:
        layers = "".join(f"<layer><filename>{f}</filename><min>0</min><max>1</max></layer>" for f in files)
        component = f"<instrumentComponent>{layers}</instrumentComponent>"
        return f"<instrument><id>0</id><name>{name}</name>{component}</instrument>"
    return f"<instrument><id>0</id><name>{name}</name>" + "".join(f"<filename>{f}</filename>" for f in files) \
        + "</instrument>"


def write_drumkit_xml(folder: Path, title: str, instruments: dict[str, list[str]], style: str = "new") -> Path:
    """``drumkit.xml``: style ``new`` (namespaced, instrumentComponent/layer), ``layer`` or ``old``."""
    if style == "layer":
        body = "".join(f"<instrument><name>{n}</name>" + "".join(f"<layer><filename>{f}</filename></layer>"
                                                                 for f in fs) + "</instrument>"
                       for n, fs in instruments.items())
    else:
        body = "".join(_instrument(n, fs, style == "new") for n, fs in instruments.items())
    attributes = f" {NAMESPACE}" if style == "new" else ""
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<drumkit_info{attributes}><name>{title}</name>'
           f"<author>tests</author><instrumentList>{body}</instrumentList></drumkit_info>\n")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "drumkit.xml").write_text(xml)
    return folder


def _new_kit(root: Path) -> None:
    kit = root / "NewKit"
    kick = hit("kick", 1)
    write(kit / "kick_soft.wav", kick)
    write(kit / "kick_hard.wav", hit("kick", 2))
    write(kit / "kick_copy.wav", 0.5 * kick)  # the soft kick at -6 dB: a duplicate
    write(kit / "kick_silent.wav", np.zeros(22050, np.float32))
    write(kit / "snare_rim.flac", np.stack([hit("snare", 3, 48000), hit("snare", 4, 48000)]), 48000)
    write(kit / "hat.wav", hit("hat", 5))
    write(kit / "bell.wav", hit("bell", 6))
    write(kit / "thing.wav", hit("bell", 7))
    write_drumkit_xml(kit, "New Kit 1.0", {
        'Kick (Tama Superstar 22")': ["kick_soft.wav", "kick_hard.wav", "kick_silent.wav", "kick_copy.wav"],
        "Snare Rimshot": ["snare_rim.flac"], "Hi Hat Closed": ["hat.wav"], "Cowbell": ["bell.wav"],
        "Mystery Thing": ["thing.wav"]})


def _old_kit(root: Path) -> None:
    kit = root / "OldKit"
    late = np.concatenate([np.zeros(int(0.2 * 44100), np.float32), hit("kick", 8)])
    write(kit / "bd.wav", late)
    write(kit / "sd.wav", hit("snare", 9))
    write(kit / "oh.wav", hit("hat", 10, seconds=0.9))
    write_drumkit_xml(kit, "OldKit", {"Kick": ["bd.wav"], "Snare": ["sd.wav"], "Open HH": ["oh.wav"]}, style="old")


def _archived_kit(root: Path, scratch: Path) -> None:
    kit = scratch / "Archived"
    write(kit / "bd.flac", hit("kick", 11))
    write(kit / "clap.wav", hit("clap", 12))
    write_drumkit_xml(kit, "Archived Kit", {"BassDrum": ["bd.flac"], "Hand Clap": ["clap.wav"]}, style="layer")
    with tarfile.open(root / "Archived.h2drumkit", "w:gz") as tar:
        tar.add(kit, arcname="Archived")


def _plain_kit(root: Path) -> None:
    kit = root / "PlainKit"
    write(kit / "Kicks" / "k1.wav", hit("kick", 13))
    write(kit / "Kicks" / "k2.wav", hit("kick", 14))
    write(kit / "Snares" / "s1.wav", hit("snare", 15))
    write(kit / "Side Stick" / "r1.wav", hit("hat", 16, seconds=0.05))


def write_tiny_kits(folder: Path) -> Path:
    """Write the four tiny kits (see the module docstring) under ``folder/kits``; return that folder."""
    root = folder / "kits"
    root.mkdir(parents=True)
    _new_kit(root)
    _old_kit(root)
    _archived_kit(root, folder / "archive_source")
    _plain_kit(root)
    return root
