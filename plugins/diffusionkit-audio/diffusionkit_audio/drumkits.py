"""Reading drum kits: Hydrogen kit folders, ``.h2drumkit`` archives and plain ``kit/<instrument>/`` trees.

``find_kits(root, scratch)`` takes one kit or a folder of kits (Debian's
``/usr/share/hydrogen/data/drumkits``) and returns every sample file with its kit and
instrument name; nothing is decoded here.

- A **Hydrogen kit** is a folder with ``drumkit.xml``: ``<instrument>``s with a ``<name>`` and
  their sample files as ``<filename>`` in ``<instrumentComponent><layer>`` (Hydrogen 0.9.7+),
  ``<layer>`` (0.9.4+) or straight under ``<instrument>`` (older kits), with or without the
  ``http://www.hydrogen-music.org/drumkit`` namespace. Files are taken relative to the kit folder and
  must stay inside it.
- A **.h2drumkit** archive (what a user downloads) is a tar (gzip) of such a folder. Its members
  are checked before anything is written: no absolute or ``..`` path, no link, device or pipe, at
  most :data:`MAX_MEMBERS` members of at most :data:`MAX_MEMBER_BYTES` and :data:`MAX_ARCHIVE_BYTES`
  in all; one bad member refuses the whole archive in one line. Files are then written, byte-capped,
  only under ``scratch``.
- A **plain kit** is a folder of instrument folders: ``MyKit/Kick/*.wav``, ``MyKit/Snare/*.flac``...
  (files anywhere below an instrument folder; loose files beside them are ignored).
"""

from __future__ import annotations

import shutil
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from diffusionkit.modality import MediaError

from .audio_io import AUDIO_EXTENSIONS

ARCHIVE_SUFFIX = ".h2drumkit"
KIT_XML = "drumkit.xml"
MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 1 << 30
MAX_ARCHIVE_BYTES = 4 << 30
MAX_XML_BYTES = 16 << 20
MAX_HEADER_BYTES = 1 << 16  # a long name or pax record
MAX_NAME_CHARS = 4096


@dataclass(frozen=True)
class KitSample:
    """One sample file of one instrument of one kit."""

    kit: str  # the kit's folder or archive name (unique under a root)
    instrument: str  # the instrument's name in the kit (a plain kit: its folder name)
    path: Path  # the file to read (inside ``scratch`` for an archive)
    source: str  # how reports name it: ``<kit>/<file within the kit>``
    identity: str  # what changes when the file does: path, size and mtime (of the archive for a member)


@dataclass
class Kit:
    """A kit's samples and what could not be used of it."""

    name: str
    title: str  # drumkit.xml's <name>, or the name
    form: str  # "hydrogen", "archive" or "folder"
    samples: list[KitSample] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # files drumkit.xml names that are absent or outside the kit
    empty_instruments: int = 0  # instruments without any sample file


def _fail(path: Path, what: str, reason: str) -> MediaError:
    return MediaError(f"cannot read {what} '{path}': {reason}")


def _stamp(path: Path) -> str:
    info = path.stat()
    return f"{path.resolve()}|{info.st_size}|{info.st_mtime_ns}"


# ---------------------------------------------------------------------------- drumkit.xml


def _local(tag: object) -> str:
    """An element's tag without its namespace."""
    return str(tag).rsplit("}", 1)[-1]


def _child_text(element: ET.Element, tag: str) -> str | None:
    found = next((child for child in element if _local(child.tag) == tag), None)
    return found.text.strip() if found is not None and found.text else None


def parse_drumkit_xml(path: Path) -> tuple[str | None, list[tuple[str, list[str]]]]:
    """The kit name and ``(instrument name, [sample file names])`` of a ``drumkit.xml``, in order."""
    if path.stat().st_size > MAX_XML_BYTES:
        raise _fail(path, "drum kit", f"larger than {MAX_XML_BYTES >> 20} MiB; not a drumkit.xml")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise _fail(path, "drum kit", f"not valid XML ({exc})") from exc
    if _local(root.tag) != "drumkit_info":
        raise _fail(path, "drum kit", f"its root element is <{_local(root.tag)}>, not <drumkit_info>")
    instruments = []
    for element in root.iter():
        if _local(element.tag) != "instrument":
            continue
        files = [e.text.strip() for e in element.iter() if _local(e.tag) == "filename" and e.text and e.text.strip()]
        instruments.append((_child_text(element, "name") or "", list(dict.fromkeys(files))))
    return _child_text(root, "name"), instruments


def _inside(folder: Path, name: str) -> Path | None:
    """The file ``name`` of a kit folder, None if it would leave the folder."""
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute():  # old kits store absolute paths: look for the file in the kit itself
        relative = PurePosixPath(relative.name)
    candidate = (folder / relative).resolve()
    return candidate if candidate.is_relative_to(folder.resolve()) else None


def read_hydrogen_kit(folder: Path, name: str | None = None, form: str = "hydrogen",
                      identity: str | None = None) -> Kit:
    """A Hydrogen kit folder. ``identity`` stands for the files' stamps (an archive's own)."""
    title, instruments = parse_drumkit_xml(folder / KIT_XML)
    kit = Kit(name or folder.name, title or name or folder.name, form)
    for instrument, files in instruments:
        kit.empty_instruments += not files
        for file_name in files:
            path = _inside(folder, file_name)
            if path is None or not path.is_file():
                kit.missing.append(f"{kit.name}/{file_name}")
                continue
            relative = path.relative_to(folder.resolve()).as_posix()
            stamp = f"{identity}|{relative}" if identity else _stamp(path)
            sample = KitSample(kit.name, instrument, path, f"{kit.name}/{relative}", stamp)
            if sample not in kit.samples:  # an instrument listed twice
                kit.samples.append(sample)
    return kit


# ---------------------------------------------------------------------------- plain kits


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _instrument_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_plain_kit(folder: Path) -> bool:
    """A folder whose sub-folders hold audio files directly (``kit/<instrument>/*.wav``)."""
    return any(p.suffix.lower() in AUDIO_EXTENSIONS for sub in _instrument_folders(folder) for p in sub.iterdir())


def read_plain_kit(folder: Path) -> Kit:
    """``kit/<instrument>/**/*.wav``: the instrument is the first folder below the kit."""
    kit = Kit(folder.name, folder.name, "folder")
    for instrument in _instrument_folders(folder):
        for path in _audio_files(instrument):
            relative = path.relative_to(folder).as_posix()
            kit.samples.append(KitSample(kit.name, instrument.name, path, f"{kit.name}/{relative}", _stamp(path)))
    return kit


# ---------------------------------------------------------------------------- archives


class _BoundedTarInfo(tarfile.TarInfo):
    """Tar headers whose long names and pax records are refused past :data:`MAX_HEADER_BYTES`:
    ``tarfile`` reads them whole while iterating, before any member can be checked (a 195 KB
    archive declaring a 200 MB name took 2.4 GB)."""

    def _proc_gnulong(self, tar):  # noqa: ANN001 - tarfile's own signature
        self._check_header_size()
        return super()._proc_gnulong(tar)

    def _proc_pax(self, tar):  # noqa: ANN001
        self._check_header_size()
        return super()._proc_pax(tar)

    def _check_header_size(self) -> None:
        if self.size > MAX_HEADER_BYTES:
            raise tarfile.HeaderError(f"a header of {self.size:,} bytes (limit {MAX_HEADER_BYTES:,})")


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why an archive member may not be extracted (None: a safe folder or regular file)."""
    if len(member.name) > MAX_NAME_CHARS:
        return f"has a name of {len(member.name):,} characters (limit {MAX_NAME_CHARS})"
    parts = PurePosixPath(member.name.replace("\\", "/")).parts
    if member.name.startswith(("/", "\\")) or (parts and ":" in parts[0]):
        return "has an absolute path"
    if ".." in parts:
        return "points outside the archive ('..')"
    if not (member.isfile() or member.isdir()):
        kind = "a link" if member.issym() or member.islnk() else "a device, pipe or other special file"
        return f"is {kind}"
    if member.size > MAX_MEMBER_BYTES:
        return f"is {member.size >> 20} MiB (limit {MAX_MEMBER_BYTES >> 20} MiB)"
    return None


def _checked_members(archive: Path, tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Every member, or MediaError at the first unsafe one or past the limits."""
    members, total = [], 0
    for member in tar:
        problem = _member_problem(member)
        if problem:
            raise _fail(archive, "drum kit archive", f"member '{member.name[:200]}' {problem}; refused (nothing "
                                                     "was extracted)")
        total += member.size
        members.append(member)
        if len(members) > MAX_MEMBERS or total > MAX_ARCHIVE_BYTES:
            raise _fail(archive, "drum kit archive", f"more than {MAX_MEMBERS} members or "
                                                     f"{MAX_ARCHIVE_BYTES >> 30} GiB; refused")
    return members


def _extract(tar: tarfile.TarFile, members: list[tarfile.TarInfo], dest: Path) -> None:
    """Write the regular files of checked members under ``dest``, never more bytes than declared."""
    for member in members:
        if not member.isfile():
            continue
        target = dest.joinpath(*PurePosixPath(member.name.replace("\\", "/")).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        if source is None:
            continue
        with source, open(target, "wb") as out:
            shutil.copyfileobj(_Capped(source, member.size), out)


class _Capped:
    """A reader that stops after ``limit`` bytes."""

    def __init__(self, stream, limit: int) -> None:
        self.stream, self.left = stream, limit

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.stream.read(size) if size > 0 else b""
        self.left -= len(data)
        return data


def read_archive(archive: Path, scratch: Path) -> Kit:
    """A ``.h2drumkit`` archive, checked and extracted under ``scratch``."""
    dest = scratch / f"{len(list(scratch.iterdir())):03d}"
    dest.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*", tarinfo=_BoundedTarInfo) as tar:
            _extract(tar, _checked_members(archive, tar), dest)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        reason = (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:200]
        raise _fail(archive, "drum kit archive", f"not a readable tar archive ({reason})") from exc
    xmls = sorted(dest.rglob(KIT_XML), key=lambda p: len(p.parts))
    if not xmls:
        raise _fail(archive, "drum kit archive", f"it holds no {KIT_XML}")
    return read_hydrogen_kit(xmls[0].parent, archive.name.removesuffix(ARCHIVE_SUFFIX), "archive", _stamp(archive))


# ---------------------------------------------------------------------------- roots


def _is_hydrogen(path: Path) -> bool:
    """A Hydrogen kit folder or archive (nothing is read)."""
    return (path.is_file() and path.name.endswith(ARCHIVE_SUFFIX)) or (path.is_dir() and (path / KIT_XML).is_file())


def _read_kit(path: Path, scratch: Path) -> Kit | None:
    """The kit ``path`` is, if it is one."""
    if path.name.startswith("."):
        return None
    if path.is_file() and path.name.endswith(ARCHIVE_SUFFIX):
        return read_archive(path, scratch)
    if path.is_dir() and (path / KIT_XML).is_file():
        return read_hydrogen_kit(path)
    return read_plain_kit(path) if path.is_dir() and is_plain_kit(path) else None


def find_kits(root: Path, scratch: Path) -> list[Kit]:
    """The kit ``root`` is, or every kit directly inside it (sorted by name).

    ``root`` is one kit when it is a Hydrogen kit or archive, or a plain kit with no Hydrogen kit
    beside its instrument folders; otherwise each entry of it that is a kit is one.

    Raises:
        MediaError: ``root`` is missing, holds no kit, two kits share a name, or an archive is unsafe.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise MediaError(f"drum kits '{root}' not found")
    if _is_hydrogen(root):
        return [_read_kit(root, scratch)]
    if not root.is_dir():
        raise MediaError(f"drum kits '{root}' is a file, not a kit: give a kit folder, a {ARCHIVE_SUFFIX} archive "
                         "or a folder of kits")
    entries = sorted(root.iterdir())
    if is_plain_kit(root) and not any(_is_hydrogen(p) for p in entries):
        return [read_plain_kit(root)]
    kits = [k for k in (_read_kit(p, scratch) for p in entries) if k is not None]
    if not kits:
        raise MediaError(f"drum kits '{root}': no kit found (a folder with {KIT_XML}, a {ARCHIVE_SUFFIX} "
                         "archive, or a folder of instrument folders of audio files)")
    names = [k.name for k in kits]
    clash = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if clash:
        raise MediaError(f"drum kits '{root}': two kits are named '{clash}'; rename one")
    return kits


def find_kits_in(roots: Sequence[Path], scratch: Path) -> list[Kit]:
    """The kits of every root in ``roots`` (each as :func:`find_kits` reads it), in the order given.

    Raises:
        MediaError: as :func:`find_kits`, or two roots hold kits of the same name.
    """
    kits, seen = [], {}
    for root in roots:
        for kit in find_kits(root, scratch):
            if kit.name in seen:
                raise MediaError(f"drum kits: '{seen[kit.name]}' and '{root}' both hold a kit named '{kit.name}'; "
                                 "rename one or leave one root out")
            seen[kit.name] = root
            kits.append(kit)
    return kits
