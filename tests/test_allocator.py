"""The ``diffusionkit`` command's allocator: which one it preloads, when it leaves things alone,
and that a relaunched process really runs with it (issue 20's allocator lever)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from diffusionkit.allocator import CHOICE, allocator_environment, find_allocator, preloaded_allocator


@pytest.fixture
def libraries(tmp_path: Path) -> Path:
    for name in ("libtcmalloc_minimal.so.4", "libjemalloc.so.2"):
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def test_tcmalloc_is_preferred_and_an_existing_preload_is_kept(libraries):
    env = allocator_environment({"LD_PRELOAD": "/opt/libother.so", "PATH": "/bin"}, [str(libraries)])
    assert env["LD_PRELOAD"] == f"{libraries / 'libtcmalloc_minimal.so.4'} /opt/libother.so"
    assert env["PATH"] == "/bin" and env[CHOICE] == "auto" and "MALLOC_CONF" not in env
    assert preloaded_allocator(env) == "tcmalloc"


def test_jemalloc_comes_with_its_decay_turned_off(libraries):
    (libraries / "libtcmalloc_minimal.so.4").unlink()
    env = allocator_environment({}, [str(libraries)])
    assert env["LD_PRELOAD"] == str(libraries / "libjemalloc.so.2")
    assert env["MALLOC_CONF"] == "dirty_decay_ms:-1,muzzy_decay_ms:-1"


@pytest.mark.parametrize("environ", [{CHOICE: "system"}, {"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}])
def test_nothing_to_do_when_asked_for_the_system_allocator_or_one_is_preloaded(libraries, environ):
    assert allocator_environment(environ, [str(libraries)]) is None


def test_nothing_to_do_when_none_is_installed(tmp_path):
    assert find_allocator([str(tmp_path)]) is None
    assert allocator_environment({}, [str(tmp_path)]) is None


@pytest.mark.skipif(find_allocator() is None, reason="no tcmalloc or jemalloc installed (apt-get install "
                                                     "libtcmalloc-minimal4); .ci/run installs one")
def test_a_relaunched_process_runs_with_the_allocator_once():
    child = "import os; print(os.environ['LD_PRELOAD'])"
    code = ("import sys; from diffusionkit.allocator import relaunch_with_allocator; "
            f"relaunch_with_allocator([sys.executable, '-c', {child!r}]); print('not relaunched')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.stdout.strip() == str(find_allocator()[1])
