"""The models the studio offers (bundles plugins ship, recent runs) and the one it keeps loaded."""

from __future__ import annotations

import threading
from pathlib import Path

from diffusionkit.bundle import LoadedModel, load_model
from diffusionkit.errors import UsageError
from diffusionkit.plugins import named_bundles

#: how many recent run folders the model picker lists.
RECENT_RUNS = 12
#: bundle file names a training run writes (the diffusion model; an autoencoder cannot sample).
RUN_BUNDLE = "model.safetensors"


def recent_runs(folder: Path, limit: int = RECENT_RUNS) -> list[Path]:
    """``model.safetensors`` of the newest runs under ``folder`` (``<folder>/<command>/<run>/``,
    ``<folder>/<run>/`` or deeper, at most four levels), newest first. Hidden folders are not runs
    (a studio's uploads lie in ``<out>/.gradio/``: an uploaded bundle is never offered)."""
    if not folder.is_dir():
        return []
    found = [p for depth in range(1, 5) for p in folder.glob("/".join(["*"] * depth) + f"/{RUN_BUNDLE}")
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    return sorted(set(found), key=lambda p: p.stat().st_mtime, reverse=True)[:limit]


class ModelShelf:
    """The model picker's choices and the loaded model. Switching loads the new model first and
    keeps the old one if that fails, so a bad choice never leaves the studio without a model.

    Args:
        runs: the folder searched for recent runs (``outputs`` of the folder the studio starts in).
        extra: checkpoints given on the command line, listed first.
        device, precision: where and how every model is loaded (see :func:`load_model`);
        adapter_scale: how much of an adapter is folded into its base.
    """

    def __init__(self, runs: Path, extra: list[str] | None = None, device: str = "cpu",
                 precision: str = "fp32", adapter_scale: float = 1.0) -> None:
        self.runs = runs
        self.extra = [str(e) for e in extra or []]
        self.device, self.precision, self.adapter_scale = device, precision, adapter_scale
        self.current: LoadedModel | None = None
        self.current_choice: str | None = None
        self._lock = threading.Lock()
        self._offered: set[str] = set()

    def choices(self) -> list[str]:
        """What the picker lists: given checkpoints, shipped bundles by name, recent run bundles
        (each remembered as offered: a run that newer runs push off the list stays loadable)."""
        listed = list(dict.fromkeys([*self.extra, *sorted(named_bundles()), *(str(p) for p in recent_runs(self.runs))]))
        self._offered.update(listed)
        return listed

    def select(self, choice: str) -> LoadedModel:
        """Load ``choice`` unless it is the loaded one. Only what :meth:`choices` lists is loaded:
        a page's request names no other file of this machine (nor learns whether one exists)."""
        if not choice:
            raise UsageError("choose a model")
        with self._lock:
            if self.current is None or choice != self.current_choice:
                if choice not in self._offered and choice not in self.choices():
                    raise UsageError(f"the studio loads only the models its picker lists (the bundles plugins ship, "
                                     f"ckpt= given when it started, runs under '{self.runs}'); restart it with "
                                     f"ckpt=<your model> to open another")
                self.current = load_model(choice, device=self.device, precision=self.precision,
                                          adapter_scale=self.adapter_scale)
                self.current_choice = choice
            return self.current

    def model(self) -> LoadedModel:
        if self.current is None:
            raise UsageError("no model is loaded; choose one in the model picker")
        return self.current


def first_choice(ckpt: str | None) -> str:
    """The model the studio opens on: ``ckpt=``, else the first bundle a plugin ships."""
    if ckpt:
        return str(ckpt)
    shipped = sorted(named_bundles())
    if not shipped:
        raise UsageError("no plugin ships a model bundle; give ckpt=<model.safetensors or a .ckpt file>")
    return shipped[0]
