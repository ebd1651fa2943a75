"""The studio's work, without any page: run an operation on the loaded model, keep a history of
takes, keep chosen takes in a named folder. Every file it writes lies inside its output folder."""

from __future__ import annotations

import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from omegaconf import OmegaConf

from diffusionkit.apps.common import prepared_model, write_recipe
from diffusionkit.apps.studio.cache import InputCache, content_hash
from diffusionkit.apps.studio.operations import OPERATIONS, TEXT, Made, Request, roundtrip
from diffusionkit.apps.studio.settings import CommandConfigs, literal, parse_media_options
from diffusionkit.apps.studio.shelf import ModelShelf
from diffusionkit.bundle import LoadedModel
from diffusionkit.errors import UsageError
from diffusionkit.modality import check_file
from diffusionkit.names import inside
from diffusionkit.options import check_like_defaults
from diffusionkit.plugin_calls import media_notes, read_media


@dataclass
class Take:
    """One result: its number, operation, settings, folder and files (per item, the medium first)."""

    number: int
    operation: str
    settings: dict[str, Any]
    folder: Path
    items: list[list[Path]]
    recipe: Path
    note: str = ""
    model: str = ""

    @property
    def label(self) -> str:
        """``#3 vary (strength=0.3, n=8, seed=0)``: how the history lists it."""
        shown = ", ".join(f"{k}={v}" for k, v in self.settings.items() if v not in (None, ""))
        return f"#{self.number} {self.operation} ({shown})"


@dataclass
class Limits:
    """What one request may ask: upload bytes and items."""

    upload_bytes: int = 20 << 20
    items: int = 16


@dataclass
class Studio:
    """The long-lived state: output folder, model shelf, caches, takes. ``run`` holds a lock, so
    requests that come at once are done one after another (the page's queue does the same)."""

    out: Path
    shelf: ModelShelf
    limits: Limits = field(default_factory=Limits)
    cache: InputCache = field(default_factory=InputCache)
    configs: CommandConfigs = field(default_factory=CommandConfigs)
    takes: dict[int, Take] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.out = Path(self.out)

    # ------------------------------------------------------------------ inputs
    def check_upload(self, path: str | Path | None, option: str) -> Path:
        """An uploaded file the operation can read: present, a regular file, within the size limit
        (the plugin judges the rest when it reads it)."""
        if path is None or str(path) == "":
            raise UsageError(f"missing value: give {option}=... (drop a file on '{option}' or pick an example)")
        file = check_file(path, option)
        size = file.stat().st_size
        if size > self.limits.upload_bytes:
            raise UsageError(f"cannot read {option} '{file}': {size / 2**20:.1f} MB is more than the studio's upload "
                             f"limit of {self.limits.upload_bytes / 2**20:.0f} MB (studio max_upload_mb=...)")
        return file

    def _source(self, model: LoadedModel, media: dict[str, Any], path: Path, option: str) -> torch.Tensor:
        """The model-space item of ``path``, cached by content; read afresh with file options,
        which may follow the file read (``output_rate=input``: the modality learns it by reading)."""
        if media:
            return read_media(model.modality, path, option)
        key = InputCache.key("item", model.sha256, media, content_hash(path))
        return self.cache.get(key, lambda: read_media(model.modality, path, option))

    def _heard(self, model: LoadedModel, media: dict[str, Any], path: Path, item: torch.Tensor) -> Callable:
        key = InputCache.key("label", model.sha256, media, content_hash(path))
        return lambda: self.cache.get(key, lambda: model.recognize(item.unsqueeze(0)))

    # ------------------------------------------------------------------ operations
    def run(self, operation: str, settings: dict[str, Any], files: dict[str, str | Path | None],
            media_text: str = "") -> Take:
        """Run ``operation`` with the page's ``settings`` (the command's option names) on ``files``
        (``input``, or ``a`` and ``b``); UsageError / MediaError (one line) on bad input."""
        if operation not in OPERATIONS:
            raise UsageError(f"unknown operation '{operation}'; choose one of: {', '.join(OPERATIONS)}")
        op = OPERATIONS[operation]
        settings = {k: v for k, v in settings.items() if k in op.fields}
        if "n" in settings and settings["n"] is not None and float(settings["n"]) > self.limits.items:
            raise UsageError(f"n={settings['n']}: the studio makes at most {self.limits.items} items at once "
                             f"(studio max_items=...)")
        paths = {name: literal(name, self.check_upload(files.get(name), name)) for name in op.files}
        media = literal("media", parse_media_options(media_text))
        with self._lock:
            model, choice = self.shelf.model(), self.shelf.current_choice or ""
            if op.command is None:
                return self._roundtrip(model, choice, paths["input"], media)
            texts = {k: str(settings.pop(k)) for k in TEXT if str(settings.get(k) or "").strip()}
            values = {**{k: v for k, v in settings.items() if k not in TEXT}, **{k: str(v) for k, v in paths.items()},
                      "ckpt": str(model.path), "media": media, "inputs": texts}
            cfg = self.configs.make(op.command, values)
            model, conditioning = prepared_model(model, cfg, int(cfg.n))
            sources = {name: self._source(model, media, path, name) for name, path in paths.items()}
            heard = self._heard(model, media, paths["input"], sources["input"]) if "input" in sources else lambda: None
            made = op.run(Request(cfg, model, conditioning, sources, heard))
            notes = [note for name, path in paths.items() for note in media_notes(model.modality, path, name)]
            made.note = "; ".join(part for part in (made.note, *notes) if part)
            with self._take_folder(operation) as folder:
                items = [model.modality.save(item, inside(folder, stem)) for item, stem in zip(made.items, made.stems)]
                inputs = {name: {"file": str(path), "sha256": content_hash(path)} for name, path in paths.items()}
                recipe = write_recipe(folder, cfg, model, studio_operation=operation, inputs=inputs, **made.extra)
            return self._record(operation, settings, folder, items, recipe, made, choice or str(model.path))

    def switch(self, choice: str) -> LoadedModel:
        """Load the model picked, after any request in progress (which keeps the model it began with)."""
        with self._lock:
            return self.shelf.select(choice)

    def _roundtrip(self, model: LoadedModel, choice: str, path: Path, media: dict[str, Any]) -> Take:
        """``roundtrip`` of ``path`` with the page's file options applied as the other operations apply them."""
        check_like_defaults(media, model.config.modality)
        model = model.with_media(media)
        with self._take_folder("roundtrip") as folder:
            files, metrics = roundtrip(model, path, folder)
            recipe = folder / "recipe.yaml"
            recipe.write_text(OmegaConf.to_yaml({"studio_operation": "roundtrip", "input": str(path),
                                                 "sha256": content_hash(path), "metrics": metrics, "media": media,
                                                 "modality": OmegaConf.to_container(model.config.modality)}))
        note = ", ".join(f"{k} {v:.2f}" for k, v in metrics.items())
        return self._record("roundtrip", {}, folder, [files], recipe, Made(torch.empty(0), [], note),
                            choice or str(model.path))

    @contextmanager
    def _take_folder(self, operation: str) -> Iterator[Path]:
        """The next take's folder, made now and taken back if writing the take fails (so a failed
        take leaves nothing that blocks the next one)."""
        folder = self.out / "takes" / f"{len(self.takes) + 1:03d}_{operation}"
        folder.mkdir(parents=True, exist_ok=False)
        try:
            yield folder
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _record(self, operation: str, settings: dict, folder: Path, items: list[list[Path]], recipe: Path,
                made: Made, model_name: str) -> Take:
        take = Take(len(self.takes) + 1, operation, settings, folder, items, recipe, made.note, model_name)
        self.takes[take.number] = take
        return take

    # ------------------------------------------------------------------ keeping takes
    def keep(self, number: int, item: int, pack: str) -> list[Path]:
        """Copy item ``item`` of take ``number`` (its files and the take's recipe) into
        ``<out>/kept/<pack>/``; the pack name becomes a plain folder name inside ``kept/``."""
        take = self.takes.get(int(number))
        if take is None or not 0 <= int(item) < len(take.items):
            raise UsageError(f"there is no take #{number} item {int(item) + 1} to keep")  # counted from 1, as the page does
        if not str(pack or "").strip():
            raise UsageError("name the folder to keep takes in (e.g. my_kit)")
        kept = self.out / "kept"
        kept.mkdir(parents=True, exist_ok=True)
        folder = inside(kept, str(pack).strip())
        folder.mkdir(exist_ok=True)
        copied = []
        for path in take.items[int(item)]:
            copied.append(Path(shutil.copy2(path, inside(folder, f"take{take.number:03d}_{path.name}"))))
        recipe = folder / f"take{take.number:03d}_recipe.yaml"
        if not recipe.exists():
            copied.append(Path(shutil.copy2(take.recipe, recipe)))
        return copied
