"""One run, several processes: which process owns the run folder, and how the processes
Lightning starts find it (plain Python: the command line checks this before importing torch).

Lightning's DDP launcher starts a run's other local processes by re-running the command line.
Those copies must not compose a new config or pick a new folder (nor, inside a ``-m`` sweep,
start the sweep again): the first process names its run folder in an environment variable that
they inherit, and they read the resolved config their node's first process wrote there
(``.config.node<NODE_RANK>.yaml``, one per node: another node's may not be written yet).
Processes started by a cluster (SLURM's ``srun``, ``torchrun``, one launch per node) share the
folder given by ``out=``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: set by the first process of a run while Lightning starts the others: the run folder.
RUN_DIR_ENV = "DIFFUSIONKIT_RUN_DIR"
#: what Lightning's launcher sets in the launching process's own environment.
_LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
#: rank variables of the launchers Lightning understands (its own, torchrun, SLURM).
_RANK_ENV = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


def spawned_run_dir() -> Path | None:
    """The run folder when this process is one Lightning started for a run (else None)."""
    folder = os.environ.get(RUN_DIR_ENV)
    return Path(folder) if folder and os.environ.get("LOCAL_RANK", "0") != "0" else None


def node_config_path(run_dir: Path) -> Path:
    """The resolved config this node's first process writes for the processes Lightning starts
    on the same node (the node number as Lightning reads it: ``NODE_RANK``, else ``GROUP_RANK``)."""
    node = os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", "0"))
    return Path(run_dir) / f".config.node{node}.yaml"


def first_on_node() -> bool:
    """Whether this process is its node's first (local rank 0), the one Lightning's launcher
    starts the node's other processes from."""
    return all(os.environ.get(name, "0") in ("", "0") for name in ("LOCAL_RANK", "SLURM_LOCALID"))


def owns_run_folder() -> bool:
    """Whether this process is the first (global rank 0) of its run, judged from the launcher's
    environment before any process group exists."""
    return all(os.environ.get(name, "0") in ("", "0") for name in _RANK_ENV)


def started_as_one_of_many() -> bool:
    """Whether a cluster or launcher started several processes for this run (each runs the whole
    command, so they can only meet in a folder named in advance: ``out=``)."""
    def count(name: str) -> int:
        value = os.environ.get(name, "")
        return int(value) if value.isdigit() else 1

    return count("WORLD_SIZE") > 1 or count("SLURM_NTASKS") > 1 or "NODE_RANK" in os.environ


@contextmanager
def shared_run_dir(run_dir: Path) -> Iterator[None]:
    """Name the run folder to the processes Lightning starts inside this block; afterwards restore
    the variables Lightning set for them, so a later run in this process launches afresh."""
    saved = {name: os.environ.get(name) for name in (RUN_DIR_ENV, *_LAUNCHER_ENV)}
    os.environ[RUN_DIR_ENV] = str(Path(run_dir).resolve())
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def leave_process_group() -> None:
    """End this process's part in its run's process group, which Lightning leaves open after
    training, so that a later run in the same process (the next job of a ``-m`` sweep) forms its
    own group instead of reusing one whose other processes are gone."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
