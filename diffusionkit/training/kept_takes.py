"""Takes a user kept, as training data: the loop generate -> keep -> finetune -> generate.

A take is a file a command wrote beside its recipe: a studio's ``kept/<pack>/take007_000_kick.wav``
beside ``take007_recipe.yaml``, or any output folder (``000_kick.wav`` beside ``recipe.yaml``).
Its class is the class name in its file name (``generate`` and ``convert`` name items by class),
else the class its recipe records (``label_inferred``, ``label=``, ``target=``). Overviews
(``grid``) and inputs (``source``) are not takes; a take whose class cannot be told is skipped
and reported. A take's caption is the prompt its recipe records (``prompt=``), else its class name.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
import yaml
from torch import Tensor
from torch.utils.data import Dataset

from diffusionkit.errors import MediaError
from diffusionkit.modality import Modality
from diffusionkit.nets.text_conditioner import CAPTION

log = logging.getLogger(__name__)
TAKE_PREFIX = re.compile(r"^(take\d+)_")
NOT_TAKES = ("grid", "source")


def recipe_of(path: Path) -> Path | None:
    """The recipe a take was written with: its take's (``take007_recipe.yaml``) or its folder's."""
    match = TAKE_PREFIX.match(path.name)
    own = [path.with_name(f"{match.group(1)}_recipe.yaml")] if match else []
    for candidate in [*own, path.with_name("recipe.yaml")]:
        if candidate.is_file():
            return candidate
    return None


def class_of(path: Path, recipe: dict) -> str | None:
    """A take's class: the one class name its stem holds, else its recipe's (see the module)."""
    classes = [str(c) for c in recipe.get("classes") or []]
    stem = TAKE_PREFIX.sub("", path.stem)
    named = {token for token in re.split(r"_(?=[^_])", stem) if token in classes}
    named |= {c for c in classes if stem.endswith(f"_{c}") or stem.startswith(f"{c}_")}
    if len(named) == 1:
        return named.pop()
    command = recipe.get("command") or {}
    for chosen in (recipe.get("label_inferred"), command.get("label"), command.get("target")):
        if isinstance(chosen, str) and chosen in classes:
            return chosen
        if isinstance(chosen, int) and not isinstance(chosen, bool) and 0 <= chosen < len(classes):
            return classes[chosen]
    return None


class KeptTakes(Dataset):
    """Every take under ``root`` (any depth) that the modality reads, labelled by its recipe's class."""

    def __init__(self, root: str | Path, modality: Modality) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise MediaError(f"takes folder '{self.root}' does not exist; set data.dataset.root=<folder>")
        found: list[tuple[Tensor, str, str]] = []
        self.captions: list[str] = []
        self.skipped: list[str] = []
        for path in sorted(p for p in self.root.rglob("*") if p.suffix.lower() in modality.file_extensions):
            if TAKE_PREFIX.sub("", path.stem).split("_")[0] in NOT_TAKES or not path.is_file():
                continue
            recipe = recipe_of(path)
            content = _read_recipe(recipe) if recipe else {}
            name = class_of(path, content) if recipe else None
            if name is None:
                self.skipped.append(f"{path}: {'no recipe beside it' if recipe is None else 'its class is not known'}")
                continue
            try:
                items = modality.load_items(path)
            except MediaError as err:  # one bad take (e.g. near-silent) is skipped, as the folder dataset does
                self.skipped.append(f"{path}: {err}")
                continue
            found += [(x, name, path.parent.name) for x in items]
            self.captions += [prompt_of(content) or name.replace("_", " ")] * len(items)
        for line in self.skipped:
            log.warning("skipping take %s", line)
        if not found:
            raise MediaError(f"takes folder '{self.root}' holds no take with a recipe naming its class "
                             f"(keep takes in the studio, or point it at a command's output folder)")
        self.classes = sorted({name for _, name, _ in found})
        self.x = torch.stack([x for x, _, _ in found])
        self.labels = torch.tensor([self.classes.index(name) for _, name, _ in found])
        self.sources = [source for _, _, source in found]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"x": self.x[index], "label": self.labels[index], CAPTION: self.captions[index]}


def prompt_of(recipe: dict) -> str | None:
    """The text prompt a recipe's command was given, if any."""
    command = recipe.get("command") or {}
    inputs = command.get("inputs") if isinstance(command, dict) else None
    prompt = inputs.get("prompt") if isinstance(inputs, dict) else None
    return " ".join(prompt.split()) if isinstance(prompt, str) and prompt.strip() else None


def _read_recipe(path: Path) -> dict:
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return recipe if isinstance(recipe, dict) else {}
