"""Atomic file replacement: a crash (even SIGKILL or power loss) mid-write never leaves a
truncated file where a good one was."""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it is flushed to disk and
    renamed over ``path`` in one step (``os.replace``), on failure removed.

    The temporary file lives in the same folder (a rename across file systems would be a copy,
    which is not atomic) and carries the host name, the process id and a random part, so
    concurrent writers never share one (on a shared file system, processes of two nodes can have
    the same id).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        _permissions_for(tmp, path)
        os.replace(tmp, path)
        _sync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _permissions_for(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the mode ``path`` has, or for a new file the mode ``open()`` would give under
    this process's umask (0644 under 022): a writer that made the temporary file private
    (safetensors, mkstemp) must not leave the result so, nor loosen a file the user restricted."""
    try:
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~current_umask()
        os.chmod(tmp, mode)
    except OSError:  # a file system without modes
        pass


def current_umask() -> int:
    """This process's umask, read without changing it where Linux shows it (``/proc``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)  # elsewhere: read by setting it, and put it back at once
    os.umask(umask)
    return umask


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
