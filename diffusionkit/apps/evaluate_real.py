"""Grading against real data the model did not train on, held out by source.

``diffusionkit evaluate ckpt=M data=NAME [data.dataset.split=test ...]`` reads real items whose
dataset names a source for each (``dataset.sources``: the kit, recording or clip it came from).
Judges are trained by source (:func:`~diffusionkit.evaluation.judge_by_source`): every real item is
judged by a classifier that never heard its source, and edits start from those real items. Without
``data=`` the model is judged on its own training data, and the report says "self-judged".
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException
from torch import Tensor

from diffusionkit.apps.evaluate_edits import pick_sources, present_classes
from diffusionkit.bundle import LoadedModel
from diffusionkit.config import missing_values
from diffusionkit.errors import UsageError
from diffusionkit.evaluation import Judge, judge_by_source, judge_per_class
from diffusionkit.names import known_class_named
from diffusionkit.training.augment import Augmenter


#: epochs of a real-data judge unless classifier.epochs says: it learns augmented takes of few items
REAL_EPOCHS = 20


@dataclass
class RealItems:
    """Real items in model space, labelled with the model's class indices, with their sources."""

    x: Tensor
    labels: Tensor
    sources: list[str]
    #: items left out because the model has no class of that name, by class name
    unknown_classes: dict[str, int]


def real_dataset(model: LoadedModel, data: DictConfig):
    """The dataset of the command's ``data=`` built as the model's own data would be (so that its
    ``${modality}`` is the model's modality)."""
    config = model.config.copy()
    with open_dict(config):
        config.data = OmegaConf.merge(config.get("data") or {}, data)
        config.data.dataset = data.dataset
    try:
        OmegaConf.to_container(config.data, resolve=True)
    except OmegaConfBaseException as err:
        where = getattr(err, "full_key", "") or "data"
        raise UsageError(f"{where}: {str(getattr(err, 'msg', err)).splitlines()[0]}") from None
    missing = missing_values(config.data)
    if missing:
        raise UsageError(f"missing value: give {' '.join(f'{k}=...' for k in missing)}")
    return instantiate(config.data.dataset)


def own_data(model: LoadedModel, command: str, verb: str) -> DictConfig:
    """The data config ``model`` was trained on, for a command given no ``data=``: only where its
    dataset declares that it makes its items (``reads_files = False``), since a bundle is data and
    which files its data would read or write (a folder relative to where the user stands, a cache
    folder) is the user's to choose; else one line naming the dataset and an option naming a file."""
    from diffusionkit.trusted_targets import resolve_target

    dataset = OmegaConf.select(model.config, "data.dataset", default=None)
    if not isinstance(dataset, DictConfig) or not isinstance(dataset.get("_target_"), str):
        raise UsageError(f"'{model.path}' names no data it was trained on (data.dataset); give data=NAME, e.g. "
                         "data=folder data.dataset.root=DIR")
    if getattr(resolve_target(dataset._target_), "reads_files", True):
        named = files_named(dataset)
        what = named[0] if named else f"its data {str(dataset._target_).rsplit('.', 1)[-1]} reads files"
        raise UsageError(f"'{model.path}' was trained on files ({what}); {command} builds no data a bundle names "
                         f"(a bundle is data): {verb} data you choose, e.g. data=folder data.dataset.root=DIR")
    return model.config.data


def files_named(node: object, where: str = "data.dataset") -> list[str]:
    """``key=value`` of every option of a data config that names a file or folder (a string with
    a path separator or a leading ``~``): what a bundle's data would read or write here."""
    if isinstance(node, DictConfig | dict):
        return [found for key, value in node.items() if key != "modality"
                for found in files_named(value, f"{where}.{key}")]
    if isinstance(node, ListConfig | list):
        return [found for i, value in enumerate(node) for found in files_named(value, f"{where}[{i}]")]
    text = str(node) if isinstance(node, str) else ""
    return [f"{where}={text}"] if "/" in text or "\\" in text or text.startswith("~") else []


def real_items(dataset, classes: list[str], where: str) -> RealItems:
    """Every item of ``dataset`` whose class the model has, with its source; UsageError (one line)
    when the dataset names no sources or shares no class with the model."""
    sources = getattr(dataset, "sources", None)
    if sources is None or len(sources) != len(dataset):
        raise UsageError(f"{where} names no source (kit, recording, clip) per item, so nothing can be held out by "
                         f"source; give a data= whose dataset has 'sources'")
    return labelled_items(dataset, classes, where)


def labelled_items(dataset, classes: list[str], where: str) -> RealItems:
    """Every item of ``dataset`` whose class the model has, labelled with the model's class
    indices, with its source where the dataset names one (else no sources); UsageError (one line)
    when it shares no class with the model."""
    sources = getattr(dataset, "sources", None)
    sources = sources if sources is not None and len(sources) == len(dataset) else None
    names = list(getattr(dataset, "classes", []) or [])
    x, labels, kept_sources, unknown = [], [], [], Counter()
    for i in range(len(dataset)):
        item = dataset[i]
        name = names[int(item["label"])] if names else str(int(item["label"]))
        known = known_class_named(name, classes)  # a folder 'Kick/' holds the model's 'kick'
        if known is None:
            unknown[name] += 1
            continue
        x.append(item["x"])
        labels.append(classes.index(known))
        if sources is not None:
            kept_sources.append(str(sources[i]))
    if not x:
        raise UsageError(f"{where} has no item of the model's classes ({', '.join(classes)}); its classes: "
                         f"{', '.join(names)}")
    return RealItems(torch.stack(x).float(), torch.tensor(labels), kept_sources, dict(unknown))


def real_judge(model: LoadedModel, data: DictConfig, cfg: DictConfig) -> tuple[Judge, dict]:
    """Judges trained by source on the real data of ``data`` (the command's ``data=``), and what
    the report says of it."""
    dataset = real_dataset(model, data)
    where = f"data {type(dataset).__name__}"
    items = real_items(dataset, model.classes, where)
    if len(set(items.sources)) < 2:
        raise UsageError(f"{where}: every item comes from one source ('{items.sources[0]}'); judging by source "
                         f"needs at least 2 (e.g. 2 kits)")
    heldout = [str(s) for s in cfg.get("heldout_sources") or []]
    _check_sources(heldout, items.sources)
    c = cfg.classifier
    augmenter = judge_augmenter(model, c.get("augment", "auto"), c.get("augment_p", 0.5))
    balanced = _on(c.get("balanced", "auto"))
    judge = judge_by_source(items.x, items.labels, items.sources, model.modality.spatial_rank, len(model.classes),
                            folds=cfg.real_folds, epochs=c.epochs or REAL_EPOCHS, batch_size=c.batch_size, lr=c.lr, width=c.width,
                            seed=cfg.seed, augment=augmenter or None, balanced=balanced)
    per_class_of_judge = judge_per_class(judge, list(model.classes))  # over every source, before the restriction
    judge = _restricted(judge, items.sources, heldout)
    per_class = Counter(model.classes[int(label)] for label in items.labels)
    grading = {"judged_on": "real data held out by source", "data": OmegaConf.to_container(data.dataset),
               "items": len(items.labels), "sources": sorted(set(items.sources)),
               "folds": int(judge.heldout_folds.max()) + 1,
               "judge_training": {"augment": sorted(augmenter.chosen), "balanced": balanced,
                                  "epochs": c.epochs or REAL_EPOCHS}, "items_per_class": dict(per_class),
               "judge_per_class": per_class_of_judge,
               "left_out_classes": items.unknown_classes,
               "edit_sources": sorted(set(map(str, cfg.get("heldout_sources") or []))) or "all",
               "judge_accuracy_on_edit_sources": float((judge.predict(judge.heldout_x, judge.heldout_folds)
                                                        == judge.heldout_labels).float().mean())}
    return judge, grading


def judge_augmenter(model: LoadedModel, chosen: Any = "auto", p: float = 0.5) -> Augmenter:
    """The modality's augmentations a real-data judge trains with: ``chosen`` is ``auto`` (all it
    offers: a judge that must recognise sources it never heard learns each item as several
    takes), ``none``, or names as in ``augment.transforms``; each applied with chance ``p``."""
    chosen = "all" if chosen == "auto" else chosen
    if isinstance(chosen, (DictConfig, ListConfig)):
        chosen = OmegaConf.to_container(chosen)
    return Augmenter(model.modality, chosen, float(p))


def _on(value: object) -> bool:
    """``auto`` or true: on (for real-data judges)."""
    return value in ("auto", True, "true")


def _check_sources(heldout: list[str], sources: list[str]) -> None:
    """Refuse (before any judge is trained) a held-out source no real item comes from."""
    unknown = sorted(set(heldout) - set(sources))
    if unknown:
        names = sorted(set(sources))
        listed = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
        raise UsageError(f"heldout_sources: no real item comes from '{unknown[0]}'; the data's sources: {listed}")


def _restricted(judge: Judge, sources: list[str], heldout: list[str]) -> Judge:
    """The judge whose held-out items (the edits' sources, label=auto's items) are those of the
    ``heldout`` sources (e.g. the kits the model never trained on); all of them if none."""
    if not heldout:
        return judge
    mask = torch.tensor([source in set(heldout) for source in sources])
    return dataclasses.replace(judge, heldout_x=judge.heldout_x[mask], heldout_labels=judge.heldout_labels[mask],
                               heldout_folds=judge.heldout_folds[mask])


def auto_label_accuracy(model: LoadedModel, judge: Judge, per_class: int) -> dict:
    """How often ``label=auto`` (the bundle's recognizer, else the model's own guess) names the true class of real
    held-out items (up to ``per_class`` of each class, spread over sources)."""
    present = present_classes(judge, len(model.classes))
    picks = [pick_sources(judge, c, per_class)[0] for c in present]
    truth = torch.cat([torch.full((len(items),), c) for items, c in zip(picks, present)])
    heard = model.recognize(torch.cat(picks))
    if heard is None:
        raise UsageError("this model is unconditional: it has no label=auto to grade")
    return {"accuracy": float((heard.cpu() == truth).float().mean()), "items": len(truth)}
