"""Where a training run writes, and which checkpoint it continues from (``resume=``).

``resume=`` takes ``true`` (the newest complete checkpoint of the run in ``out=``), ``auto`` (that
checkpoint if there is one, else a fresh start in ``out=``: what a preempted or requeued cluster
job needs), a run folder, or a ``.ckpt`` file.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from diffusionkit.apps.common import output_dir
from diffusionkit.errors import UsageError
from diffusionkit.training.checkpoint_io import load_checkpoint_file
from diffusionkit.training.processes import owns_run_folder, spawned_run_dir, started_as_one_of_many

LAST = Path("checkpoints") / "last.ckpt"
BUNDLES = ("model.safetensors", "autoencoder.safetensors")
#: what every checkpoint Lightning writes holds (a plain weights file does not).
TRAINING_STATE = {"state_dict", "global_step"}


def _out(cfg: DictConfig) -> Path | None:
    return Path(cfg.out).expanduser() if cfg.get("out") else None


def resume_checkpoint(cfg: DictConfig) -> Path | None:
    """The checkpoint ``resume=`` points at (None: a fresh run); UsageError if there is none."""
    resume, out = cfg.get("resume"), _out(cfg)
    if resume is None or resume is False:
        return None
    if resume is True or resume == "auto":
        if out is None:
            raise UsageError(f"resume={str(resume).lower()} continues the run in out=; give out=<run folder> "
                             f"(or resume=<run folder or .ckpt file>)")
        newest = newest_checkpoint(out)
        if resume == "auto" and not newest.is_file():
            if any((out / name).is_file() for name in BUNDLES):
                raise UsageError(f"'{out}' holds a finished model but no checkpoint to continue; "
                                 f"choose a new out= (nothing was overwritten)")
            return None
        return _existing(newest, f"resume=true: no checkpoint in '{newest.parent}'")
    path = Path(str(resume)).expanduser()
    if path.is_dir():
        return _existing(newest_checkpoint(path), f"resume: no checkpoint in '{path / 'checkpoints'}'")
    return _existing(path, f"resume checkpoint '{path}' not found")


def _existing(path: Path, problem: str) -> Path:
    """``path`` once it is known to be a complete checkpoint that loads without running code
    (checked here for every strategy: some load checkpoints with their own unpickler)."""
    if not path.is_file():
        raise UsageError(f"{problem}; pass resume=<run folder> or resume=<run>/checkpoints/<file>.ckpt")
    loaded = load_checkpoint_file(path, mmap=True)
    if not isinstance(loaded, dict) or not TRAINING_STATE <= loaded.keys():
        raise UsageError(f"'{path}' is not a Lightning checkpoint (a weights file holds no training state to "
                         f"continue); pass resume=<run>/checkpoints/<file>.ckpt")
    return path


def newest_checkpoint(folder: Path) -> Path:
    """The most recently completed checkpoint of a run folder: ``last.ckpt`` unless a kill came
    between writing a step checkpoint and ``last.ckpt`` (writes are atomic, so the newest file
    is complete); a folder without checkpoints gives ``checkpoints/last.ckpt``."""
    found = sorted(folder.joinpath("checkpoints").glob("*.ckpt"),
                   key=lambda p: (p.stat().st_mtime_ns, p.name == LAST.name))
    return found[-1] if found else folder / LAST


def open_run_folder(cfg: DictConfig, checkpoint: Path | None) -> Path:
    """The run folder (created): the one the first process named, when Lightning started this
    process; else ``out=``; else, when resuming, the run the checkpoint belongs to
    (``<run>/checkpoints/x.ckpt``) or the checkpoint's own folder; else a new
    ``outputs/train/<date>_<time>``. A new run never writes into a non-empty folder."""
    spawned, out = spawned_run_dir(), _out(cfg)
    if spawned is not None:
        return spawned
    if out is None and checkpoint is None and (started_as_one_of_many() or not owns_run_folder()):
        raise UsageError("this run's processes were started by a cluster launcher; give out=<folder on a shared "
                         "file system> so that they all write to the same run")
    if checkpoint is not None or cfg.get("resume") == "auto" or not owns_run_folder():
        folder = out or (checkpoint.resolve().parent.parent if checkpoint.resolve().parent.name == "checkpoints"
                         else checkpoint.resolve().parent)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return output_dir("train", cfg.get("out"))
