"""What the studio can do with a model: each operation is one of the CLI's commands, run through
the same functions, with the settings the page shows for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from omegaconf import DictConfig
from torch import Tensor

from diffusionkit.apps.common import item_names
from diffusionkit.apps.convert import conversions, target_name
from diffusionkit.apps.edits import source_labels, unrecognized_note
from diffusionkit.apps.extend import extended
from diffusionkit.apps.generate import generated
from diffusionkit.apps.inpaint import inpainted
from diffusionkit.apps.interpolate import interpolation, item_stems
from diffusionkit.apps.vary import variations
from diffusionkit.bundle import LoadedModel
from diffusionkit.names import inside
from diffusionkit.plugin_calls import plugin_call


@dataclass
class Request:
    """One run of an operation: the checked command config, the prepared model, its concatenated
    condition, the inputs' model-space items by option name, and the class the model hears in
    ``input`` (computed once per input, see :class:`~diffusionkit.apps.studio.cache.InputCache`)."""

    cfg: DictConfig
    model: LoadedModel
    conditioning: dict[str, Tensor]
    sources: dict[str, Tensor]
    heard: Callable[[], Tensor | None]


@dataclass
class Made:
    """What an operation made: model-space items and their file stems, and a note for the page."""

    items: Tensor
    stems: list[str]
    note: str = ""
    extra: dict = field(default_factory=dict)  # recipe entries


def edit_labels_of(request: Request) -> Tensor | None:
    """Labels for ``n`` edits: ``label=auto`` from the cached inference, else as the command does."""
    cfg = request.cfg
    n = int(cfg.n)
    if cfg.label == "auto":
        heard = request.heard()
        return None if heard is None else heard[:1].expand(n).clone()
    return source_labels(request.model, request.sources["input"], cfg.label, n)


Edit = Callable[[DictConfig, LoadedModel, Tensor, "Tensor | None", torch.Generator, dict[str, Tensor]], Tensor]


def run_edit(edit: Edit, prefix: Callable[[DictConfig, LoadedModel], str] | str, request: Request) -> Made:
    """An edit of ``input`` as its command makes it, named as its command names the files."""
    cfg, model = request.cfg, request.model
    labels = edit_labels_of(request)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    items = edit(cfg, model, request.sources["input"], labels, generator, request.conditioning)
    name = prefix(cfg, model) if callable(prefix) else prefix
    extra, note = {}, ""
    if cfg.label == "auto" and labels is not None:
        extra["label_inferred"] = model.classes[int(labels[0])]
        note = f"the model hears the input as '{extra['label_inferred']}'" + unrecognized_note(model)
    return Made(items, [f"{name}_{i:03d}" for i in range(len(items))], note, extra)


def run_generate(request: Request) -> Made:
    samples, labels = generated(request.cfg, request.model, request.conditioning)
    return Made(samples, item_names(len(samples), labels, request.model.classes))


def run_interpolate(request: Request) -> Made:
    ends = torch.stack([request.sources["a"], request.sources["b"]])
    samples, _, weights = interpolation(request.cfg, request.model, ends, request.conditioning)
    return Made(samples, item_stems(weights))


SAMPLING = ("steps", "guidance", "seed", "sampler")
#: the text fields an operation shows for a model with a text prompt (the command's prompt= inputs)
TEXT = ("prompt", "negative_prompt")


@dataclass(frozen=True)
class Operation:
    """One thing the page does.

    Attributes:
        name: as the page shows it.
        command: the CLI command whose config, option table and functions it uses (None: roundtrip,
            which needs only the model's modality).
        files: the command's file options the page asks for (``input``; ``a`` and ``b``).
        fields: the settings the page shows for it (the command's option names).
        run: makes the items of a :class:`Request`.
        help: one line for the page.
    """

    name: str
    command: str | None
    files: tuple[str, ...]
    fields: tuple[str, ...]
    run: Callable[[Request], Made] | None
    help: str


OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    Operation("generate", "generate", (), ("label", "n", *TEXT, *SAMPLING), run_generate,
              "new items of a class (or of every class in turn)"),
    Operation("vary", "vary", ("input",), ("strength", "n", "label", *TEXT, *SAMPLING),
              partial(run_edit, variations, "variation"),
              "variations of the input; strength 0 keeps it, 1 makes a new one"),
    Operation("convert", "convert", ("input",), ("target", "strength", "method", "n", *TEXT, *SAMPLING),
              partial(run_edit, conversions, target_name),
              "the input regenerated as another class (sdedit: several takes; invert: one, keeps the timing)"),
    Operation("inpaint", "inpaint", ("input",), ("start", "end", "n", "label", *TEXT, *SAMPLING),
              partial(run_edit, inpainted, "inpainted"),
              "regenerate the region from start to end (fractions of the length), keep the rest"),
    Operation("extend", "extend", ("input",), ("context", "times", "n", "label", *TEXT, *SAMPLING),
              partial(run_edit, extended, "extended"),
              "continue the input past its end, each window starting from the last context of the one before"),
    Operation("interpolate", "interpolate", ("a", "b"), ("n", "strength", "label", *TEXT, "steps", "guidance", "seed"),
              run_interpolate, "items from input a to input b, through their inverted noise"),
    Operation("roundtrip", None, ("input",), (), None,
              "the input through the model's file format and back: what the model space keeps"),
)}


def roundtrip(model: LoadedModel, path: Path, folder: Path) -> tuple[list[Path], dict[str, float]]:
    """``roundtrip`` of one file with the model's modality: the files written and the measures."""
    stem = inside(folder, f"roundtrip_{path.stem}")
    with plugin_call(model.modality, f"cannot roundtrip input={path}"):
        metrics = model.modality.roundtrip(path, stem)
    return sorted(folder.glob(f"{stem.name}.*")), metrics
