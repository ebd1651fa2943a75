"""Where a training run writes, and which checkpoint it continues from (``resume=``).

``resume=`` takes ``true`` (the newest complete checkpoint of the run in ``out=``), ``auto`` (that
checkpoint if there is one, else a fresh start in ``out=``: what a preempted or requeued cluster
job needs), a run folder, or a ``.ckpt`` file.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch.nn import Module

from diffusionkit.apps.common import output_dir
from diffusionkit.bundle import CHECKPOINT_KEY
from diffusionkit.errors import UsageError
from diffusionkit.training.checkpoint_io import load_checkpoint_file
from diffusionkit.training.processes import owns_run_folder, spawned_run_dir, started_as_one_of_many

LAST = Path("checkpoints") / "last.ckpt"
BUNDLES = ("model.safetensors", "autoencoder.safetensors")
#: what every checkpoint Lightning writes holds (a plain weights file does not).
TRAINING_STATE = {"state_dict", "global_step"}
#: the settings that make a run another model; a resume must agree on them (shapes are checked too).
MODEL_KEYS = ("stage", "modality._target_")


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
            _check_fresh_start(cfg, out)
            return None
        return _same_model(cfg, _existing(newest, f"resume=true: no checkpoint in '{newest.parent}'"))
    path = Path(str(resume)).expanduser()
    if path.is_dir():
        return _same_model(cfg, _existing(newest_checkpoint(path), f"resume: no checkpoint in '{path / 'checkpoints'}'"))
    return _same_model(cfg, _existing(path, f"resume checkpoint '{path}' not found"))


def _check_fresh_start(cfg: DictConfig, out: Path) -> None:
    """``resume=auto`` without a checkpoint starts afresh in ``out``: only in an empty folder, or in
    one that this very run began (its ``config.yaml`` names the same model) before a checkpoint."""
    if any((out / name).is_file() for name in BUNDLES):
        raise UsageError(f"'{out}' holds a finished model but no checkpoint to continue; "
                         f"choose a new out= (nothing was overwritten)")
    difference = _foreign(cfg, out)
    if difference:
        raise UsageError(f"resume=auto: '{out}' is not empty and holds no checkpoint of this run ({difference}); "
                         f"choose a new or empty out= (nothing was overwritten)")


def _foreign(cfg: DictConfig, folder: Path) -> str | None:
    """Why ``folder`` is not this run's to write in (None: it is empty, holds checkpoints alone,
    or its ``config.yaml`` names the same model)."""
    if not folder.is_dir() or all(p.is_dir() or p.parent == folder / "checkpoints" and p.suffix == ".ckpt"
                                  for p in folder.rglob("*")):
        return None
    config = folder / "config.yaml"
    return _model_difference(_read_config(config.read_text()), cfg) if config.is_file() else "no config.yaml"


def _read_config(text: str) -> DictConfig | None:
    try:
        config = OmegaConf.create(text)
    except Exception:  # not YAML, or not a mapping: not a run's config
        return None
    return config if isinstance(config, DictConfig) else None


def _model_difference(stored: DictConfig | None, cfg: DictConfig) -> str | None:
    """The first of :data:`MODEL_KEYS` on which a stored run config and this command disagree."""
    if stored is None:
        return "its config is unreadable"
    for key in MODEL_KEYS:
        before, now = OmegaConf.select(stored, key, default=None), OmegaConf.select(cfg, key, default=None)
        if str(before) != str(now):
            return f"it was trained with {key}={before}, this command has {key}={now}"
    return None


def _same_model(cfg: DictConfig, checkpoint: Path) -> Path:
    """``checkpoint`` once its stored config names the model this command trains (a checkpoint
    without diffusionkit's metadata is checked by its weights' shapes, see :func:`check_weights_fit`)."""
    metadata = load_checkpoint_file(checkpoint, mmap=True).get(CHECKPOINT_KEY) or {}
    if isinstance(metadata, dict) and isinstance(metadata.get("config"), str):
        difference = _model_difference(_read_config(metadata["config"]), cfg)
        if difference:
            raise UsageError(f"resume: '{checkpoint}' is another model ({difference}); resume it with the same "
                             f"settings, or choose a new out= to start afresh (nothing was written)")
    return checkpoint


def check_weights_fit(module: Module, checkpoint: Path | None) -> None:
    """Refuse (one line, before the run folder is touched) a checkpoint whose weights do not fit
    the model this command built: other names or shapes, e.g. another number of classes."""
    if checkpoint is None:
        return
    stored = load_checkpoint_file(checkpoint, mmap=True).get("state_dict") or {}
    if not isinstance(stored, dict):
        raise UsageError(f"resume: '{checkpoint}': its state_dict is not a mapping of names to tensors")
    if hasattr(module, "on_load_checkpoint"):  # the names Lightning will load (an older checkpoint's, renamed)
        upgraded = {"state_dict": dict(stored)}
        module.on_load_checkpoint(upgraded)
        stored = upgraded["state_dict"]
    for name, tensor in module.state_dict().items():
        found = stored.get(name)
        found = found if isinstance(found, Tensor) else None
        if found is None or tuple(found.shape) != tuple(tensor.shape):
            have = "nothing" if found is None else f"shape {list(found.shape)}"
            raise UsageError(f"resume: '{checkpoint}' does not fit this model ({name}: it holds {have}, the model "
                             f"needs {list(tensor.shape)}); resume with the run's own settings and data, or choose "
                             f"a new out= (nothing was written)")


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
        folder = out or _run_of(checkpoint)
        _check_continued_folder(cfg, folder)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return output_dir("train", cfg.get("out"))


def _run_of(checkpoint: Path) -> Path:
    """The run a checkpoint belongs to (``<run>/checkpoints/x.ckpt``); a checkpoint kept anywhere
    else (a download) names no run, and the resumed run needs ``out=``."""
    if checkpoint.resolve().parent.name != "checkpoints":
        raise UsageError(f"resume: '{checkpoint}' is not in a run's checkpoints/ folder, so it names no run to "
                         f"continue in; give out=<new folder> (nothing was written)")
    return checkpoint.resolve().parent.parent


def _check_continued_folder(cfg: DictConfig, folder: Path) -> None:
    """A resumed run writes only into an empty folder or one that is a run of the same model (its
    ``config.yaml`` agrees on :data:`MODEL_KEYS`), never over someone's other files."""
    difference = _foreign(cfg, folder)
    if difference:
        raise UsageError(f"resume: '{folder}' is not a run of this model ({difference}), and a resumed run would "
                         f"write its config.yaml and model there; choose a new or empty out= (nothing was written)")
