"""Reading a Lightning checkpoint file without running code, and without Lightning.

Every read is ``torch.load(weights_only=True)`` (tensors and plain containers only), so a
crafted file runs nothing; a bad file is one line naming what is wrong with it.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

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
