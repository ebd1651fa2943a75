"""Lightning checkpoint files that survive crashes and load without running code.

Lightning's own writer stages a checkpoint in the system's temporary folder and moves it into
place, which is a plain copy over the old file when that folder is on another file system (a
tmpfs ``/tmp``): a kill during the copy leaves a truncated ``last.ckpt``. This writer renames
within the checkpoint's own folder instead, and every read is ``torch.load(weights_only=True)``
(tensors and plain containers only), so resuming from a crafted file runs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from diffusionkit.atomic import atomic_path
from diffusionkit.checkpoint_file import load_checkpoint_file
from diffusionkit.errors import UsageError

__all__ = ["SafeCheckpointIO", "load_checkpoint_file"]


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
