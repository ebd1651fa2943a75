"""Lightning checkpoint files that survive crashes and load without running code.

Lightning's own writer stages a checkpoint in the system's temporary folder and moves it into
place, which is a plain copy over the old file when that folder is on another file system (a
tmpfs ``/tmp``): a kill during the copy leaves a truncated ``last.ckpt``. This writer renames
within the checkpoint's own folder instead, and every read is ``torch.load(weights_only=True)``
(tensors and plain containers only), so resuming from a crafted file runs nothing.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from diffusionkit.atomic import atomic_path
from diffusionkit.errors import UsageError


def load_checkpoint_file(path: str | Path, mmap: bool = False) -> Any:
    """The contents of a ``.ckpt`` file, read with ``weights_only=True``; UsageError (one line)
    for a missing, truncated, corrupt or code-carrying file. ``mmap`` maps the tensors instead of
    reading them (a cheap check of a large file)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # pickle, zip and safety errors all mean the same to the user
        if mmap:  # mapping a damaged file fails without saying why; reading it does
            return load_checkpoint_file(path)
        raise UsageError(f"cannot read checkpoint '{path}' safely: {_reason(err, Path(path))}") from None


def _reason(err: Exception, path: Path) -> str:
    """What is wrong with a file ``torch.load(weights_only=True)`` refused, in a few words."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if isinstance(err, pickle.UnpicklingError) and lines and lines[0].startswith("Weights only load failed"):
        detail = next((line for line in lines[1:] if "GLOBAL" in line), lines[-1])
        return f"it holds objects other than tensors, which could run code ({detail.rstrip('.')})"
    reason = lines[0] if lines else type(err).__name__
    if path.is_file() and not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        return f"the file is incomplete or corrupt ({reason})"
    return reason


class SafeCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint atomically (temporary file beside it, fsync, rename) and reads
    checkpoints (``resume=``) without unrestricted pickle."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path: str | Path, map_location: Callable | None = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        checkpoint = load_checkpoint_file(path)
        if not isinstance(checkpoint, dict):
            raise UsageError(f"'{path}' is not a Lightning checkpoint")
        return checkpoint
