"""A command's output folder: checked before any work starts, made only when work starts, and
removed again when the command fails before anything was written into it."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

#: folders :func:`make_folder` created in this process and not yet settled (newest last).
_made: list[Path] = []


def folder_problem(path: Path) -> str | None:
    """Why a command could not write its outputs to the folder ``path`` (None: it can). A folder
    is made and removed again to find out: permissions (root ignores them), a read-only file
    system or a file in the way only show when one tries."""
    if path.is_symlink() and not path.exists():
        return f"is a symbolic link to '{os.readlink(path)}', which does not exist; choose another out="
    if path.exists() and not path.is_dir():
        return "is a file, not a folder; choose a new out= (nothing was overwritten)"
    try:
        _probe(path)
    except OSError as err:
        return f"cannot write there ({err.strerror or err}); choose a writable out="
    return None


def _probe(path: Path) -> None:
    """Make and remove a uniquely named folder in ``path``, or in its nearest existing parent when
    it is missing (never ``path`` itself: other processes of a run may be making it right now)."""
    existing = path
    while not (existing.exists() or existing.is_symlink()):
        existing = existing.parent
    os.rmdir(tempfile.mkdtemp(prefix=".diffusionkit-probe-", dir=existing))


def _missing(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not (path.exists() or path.is_symlink()) and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _make_missing(path: Path) -> list[Path]:
    """Make ``path`` with its missing parents; return the folders this process made (deepest
    first; one that another process made meanwhile is not among them)."""
    made: list[Path] = []
    for folder in reversed(_missing(path)):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue
        made.insert(0, folder)
    return made


def make_folder(path: Path) -> Path:
    """Make the output folder ``path`` (and missing parents), remembered so that
    :func:`removed_on_failure` can take it back if the command fails before writing into it."""
    _made.extend(_make_missing(path))
    return path


def _holds_files(folder: Path) -> bool:
    return any(files for _, _, files in os.walk(folder))


def _remove_empty(folders: Iterable[Path]) -> None:
    """Remove each folder that holds no file (only empty sub-folders), deepest first."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not folder.is_symlink() and not _holds_files(folder):
            for root, subfolders, _ in os.walk(folder, topdown=False):
                for sub in subfolders:
                    os.rmdir(os.path.join(root, sub))
            folder.rmdir()


@contextmanager
def removed_on_failure(out: str | None) -> Iterator[None]:
    """Run a command; if it fails, remove the folders it made (``out=`` and its missing parents,
    or the default ``outputs/<command>/<stamp>``) that still hold no file."""
    planned = _missing(Path(str(out)).expanduser()) if out else []
    start = len(_made)
    try:
        yield
    except BaseException:
        _remove_empty([*_made[start:], *planned])
        raise
    finally:
        del _made[start:]
