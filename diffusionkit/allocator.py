"""A faster memory allocator for the CPU hot loop, preloaded by the ``diffusionkit`` command.

glibc's malloc hands large buffers (a U-Net's activations) back to the system as they are freed
and page-faults them in again on the next step; tcmalloc and jemalloc keep them. On this project's
2-core machine a 64x64 bf16 training step of a 4 M-parameter U-Net took 1.70 s with glibc,
1.46-1.50 s with tcmalloc and 1.51-1.63 s with jemalloc (decay off), and jemalloc's default
decay was twice as slow as glibc (benchmarks/bench_vs_diffusers.py; issue 20's notes).

An allocator must be in place before the process starts, so the command re-executes itself once
with ``LD_PRELOAD`` when one is installed (Debian: ``apt-get install libtcmalloc-minimal4`` or
``libjemalloc2``) and none is preloaded yet. ``DIFFUSIONKIT_ALLOCATOR=system`` keeps glibc's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

#: the environment variable that chooses: ``auto`` (default) or ``system`` (glibc's malloc)
CHOICE = "DIFFUSIONKIT_ALLOCATOR"
#: allocators in order of preference: (name, shared library, extra environment)
ALLOCATORS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("tcmalloc", "libtcmalloc_minimal.so.4", {}),
    ("jemalloc", "libjemalloc.so.2", {"MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"}),
)
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                "/usr/local/lib")


def preloaded_allocator(environ: Mapping[str, str] = os.environ) -> str | None:
    """The name of the allocator ``LD_PRELOAD`` already holds (None: the system's)."""
    preload = environ.get("LD_PRELOAD", "")
    return next((name for name, library, _ in ALLOCATORS if library.split(".so")[0] in preload), None)


def find_allocator(dirs: Sequence[str] = LIBRARY_DIRS) -> tuple[str, Path, dict[str, str]] | None:
    """The first installed allocator of :data:`ALLOCATORS`: (name, library path, environment)."""
    for name, library, extra in ALLOCATORS:
        for folder in dirs:
            path = Path(folder) / library
            if path.is_file():
                return name, path, extra
    return None


def allocator_environment(environ: Mapping[str, str], dirs: Sequence[str] = LIBRARY_DIRS) -> dict[str, str] | None:
    """The environment to re-execute with, or None when there is nothing to do (asked for the
    system's allocator, one already preloaded, none installed)."""
    if environ.get(CHOICE, "auto") == "system" or preloaded_allocator(environ):
        return None
    found = find_allocator(dirs)
    if found is None:
        return None
    _, path, extra = found
    preload = " ".join(p for p in (str(path), environ.get("LD_PRELOAD", "")) if p)
    return {**environ, **extra, "LD_PRELOAD": preload, CHOICE: environ.get(CHOICE, "auto")}


def relaunch_with_allocator(argv: Sequence[str]) -> None:
    """Replace this process by ``argv`` run with an installed allocator preloaded; returns only
    when there is nothing to do. Call it before importing anything heavy; to run this very
    command again, pass ``[sys.executable, *sys.orig_argv[1:]]`` (interpreter options such as
    ``-X importtime`` and ``-m`` kept)."""
    environment = allocator_environment(os.environ)
    if environment is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(argv[0], list(argv), environment)
    except OSError:  # e.g. an interpreter this user may run but not exec by that path: go on as we are
        return
