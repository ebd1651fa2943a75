"""Atomic file replacement: a crash (even SIGKILL or power loss) mid-write never leaves a
truncated file where a good one was."""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: this process's umask, read once at import (reading it means setting it, which is not thread-safe)
_UMASK = os.umask(0o022)
os.umask(_UMASK)


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
        _permissions_of_a_new_file(tmp)
        os.replace(tmp, path)
        _sync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _permissions_of_a_new_file(path: Path) -> None:
    """The mode ``open()`` gives a new file under this process's umask (0644 under 022): a writer
    that made the temporary file private (safetensors, mkstemp) must not leave the result so."""
    try:
        os.chmod(path, 0o666 & ~_UMASK)
    except OSError:  # a file system without modes
        pass


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
