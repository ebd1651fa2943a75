"""Settings for every test session (the core's tests and the plugins')."""

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# numba (librosa's onset and peak functions, the audio plugin's phase retrieval) caches compiled code
# on disk; two test workers compiling the same function at once can leave a corrupt cache that
# crashes every later process that loads it (seen: librosa.util.peak_pick segfaulting). One cache
# folder per test process (the commands a test starts inherit it), set before numba is imported.
os.environ["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / "diffusionkit-numba" / str(os.getpid()))

import torch  # noqa: E402

# One intra-op thread: the tests' tensors are small, and `pytest -n 2` on 2 cores (or any busy
# machine) makes two threads per process wait on each other, 5-100x slower for small ops.
torch.set_num_threads(1)


def _release_readers(path: Path, stop: threading.Event, after_s: float) -> None:
    """After ``after_s``, open ``path`` for writing now and then, so a reader blocked in open()
    gets end-of-file instead of waiting forever (opening with no reader fails: retry)."""
    stop.wait(after_s)
    while not stop.is_set():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
        stop.wait(0.2)


@pytest.fixture
def named_pipe(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """A maker of named pipes (FIFOs) in ``tmp_path``, e.g. ``named_pipe("x.png")``. Code that
    wrongly opens one is released after 5 s with no data (and so fails its test) instead of
    hanging the session."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("named pipes need POSIX")
    stop = threading.Event()

    def make(name: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        threading.Thread(target=_release_readers, args=(path, stop, 5.0), daemon=True).start()
        return path

    yield make
    stop.set()
