"""Scores for the editing commands, judged by the evaluation classifier.

* ``vary``: how often variations keep their source's class, and how far apart they are.
* ``convert``: how often conversions are recognised as the target class, and how closely they
  keep the source's energy envelope over time (when the modality defines one).
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig, ListConfig, open_dict
from torch import Tensor

from diffusionkit.apps.common import resolve_label, sample_in_batches
from diffusionkit.apps.convert import convert
from diffusionkit.bundle import LoadedModel
from diffusionkit.errors import UsageError
from diffusionkit.evaluation import Judge, features, mean_pairwise_distance, pearson


def pick_sources(judge: Judge, label: int, count: int) -> tuple[Tensor, Tensor | None]:
    """``count`` held-out real items of class ``label`` and their folds (None: one judge), taken
    from the folds in turn so that they come from as many sources as there are."""
    index = (judge.heldout_labels == label).nonzero().flatten()
    if len(index) == 0:
        raise UsageError(f"no held-out real item of class {label} to edit; use a larger dataset")
    if judge.heldout_folds is None:
        return judge.heldout_x[index[:count]], None
    folds = judge.heldout_folds[index]
    rank = torch.zeros(len(index), dtype=torch.long)  # an item's place within its fold
    for k in folds.unique():
        rank[folds == k] = torch.arange(int((folds == k).sum()))
    chosen = index[torch.argsort(rank * (len(folds) + 1) + folds, stable=True)[:count]]
    return judge.heldout_x[chosen], judge.heldout_folds[chosen]


def present_classes(judge: Judge, num_classes: int) -> list[int]:
    """The classes of which the judge holds real held-out items."""
    return [c for c in range(num_classes) if bool((judge.heldout_labels == c).any())]


def _sources(judge: Judge, labels: range | list[int], count: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """Real held-out items of each class in ``labels``: items, their true labels, their folds."""
    picks = [(pick_sources(judge, c, count), c) for c in labels]
    x = torch.cat([items for (items, _), _ in picks])
    true = torch.cat([torch.full((len(items),), c) for (items, _), c in picks])
    folds = None if judge.heldout_folds is None else torch.cat([f for (_, f), _ in picks])
    return x, true, folds


def _repeat(folds: Tensor | None, n: int) -> Tensor | None:
    return None if folds is None else folds.repeat_interleave(n)


#: how ``evaluate``'s variations are labelled (``vary.label``, one or a list): as ``vary
#: label=auto`` (the class the model recognises), with the source's true class named (as a
#: musician who says ``label=kick``), or unconditioned.
VARY_LABELS = ("auto", "given", None)


def vary_scores(model: LoadedModel, judge: Judge, cfg: DictConfig, generator: torch.Generator) -> list[dict]:
    """Per label mode and strength: class kept by the variations (the class the judge hears in
    the source, and the source's true class), and their spread relative to real items'."""
    sources, true_labels, folds = _sources(judge, present_classes(judge, len(model.classes)),
                                              cfg.vary.sources_per_class)
    source_labels = judge.predict(sources, folds)
    real_spread = mean_pairwise_distance(features(judge.model, judge.heldout_x))
    n = int(cfg.vary.n)
    settings = cfg.copy()
    settings.guidance = cfg.vary.guidance
    init = sources.repeat_interleave(n, dim=0)
    rows = []
    for mode in vary_label_modes(cfg.vary.label):
        conditioning = model.recognize(sources) if mode == "auto" else true_labels if mode == "given" else None
        labels = None if conditioning is None else conditioning.repeat_interleave(n)
        for strength in cfg.vary.strengths:
            variations = sample_in_batches(model, len(init), labels, settings, cfg.batch_size, generator,
                                           init=init, strength=float(strength))
            heard = judge.predict(variations, _repeat(folds, n))
            kept = heard == source_labels.repeat_interleave(n)
            spread = [mean_pairwise_distance(f) for f in features(judge.model, variations).split(n)]
            rows.append({"label": mode or "none", "strength": float(strength), "class_kept": float(kept.float().mean()),
                         "true_class_kept": float((heard == true_labels.repeat_interleave(n)).float().mean()),
                         "diversity": float(torch.tensor(spread).mean()) / real_spread,
                         "rms_change": float((variations - init).square().mean().sqrt())})
    return rows


def vary_label_modes(setting: object) -> list[str | None]:
    """``vary.label`` as a list of modes (:data:`VARY_LABELS`); UsageError for another value."""
    modes = list(setting) if isinstance(setting, (list, tuple, ListConfig)) else [setting]
    modes = [None if mode in (None, "none", "null") else mode for mode in modes]
    for mode in modes:
        if mode not in VARY_LABELS:
            raise UsageError(f"vary.label: '{mode}' is not a label mode; choose auto, given or none (or a list)")
    return modes


def check_edit_settings(model: LoadedModel, cfg: DictConfig) -> None:
    """Refuse a bad ``vary.label`` or a ``convert.pairs`` entry that is not two of the model's
    classes in one line, before any judge is trained or sample drawn."""
    vary_label_modes(cfg.vary.label)
    for pair in cfg.convert.pairs or []:
        if not isinstance(pair, (list, tuple, ListConfig)) or len(pair) != 2:
            raise UsageError(f"convert.pairs: {pair!r} is not a pair; give [source, target] class pairs, "
                             "e.g. 'convert.pairs=[[kick,snare]]'")
        for name in pair:
            resolve_label(name, model.classes)


def convert_scores(model: LoadedModel, judge: Judge, cfg: DictConfig, generator: torch.Generator) -> list[dict]:
    """Per (source class, target class, strength): target-class rate and envelope correlation."""
    rows = []
    for source_name, target_name in cfg.convert.pairs:
        source_label = resolve_label(source_name, model.classes)
        target = resolve_label(target_name, model.classes)
        sources, folds = pick_sources(judge, source_label, cfg.convert.sources)
        for strength in cfg.convert.strengths:
            settings = cfg.copy()
            with open_dict(settings):  # the evaluate config has no strength/method keys of its own
                settings.strength, settings.method = float(strength), cfg.convert.method
            converted = convert(model, sources, target, settings, generator)
            row = {"source": model.classes[source_label], "target": model.classes[target],
                   "strength": float(strength), "method": cfg.convert.method,
                   "target_rate": float((judge.predict(converted, folds) == target).float().mean())}
            envelope_source, envelope_converted = model.modality.envelope(sources), model.modality.envelope(converted)
            if envelope_source is not None:
                row["envelope_correlation"] = float(pearson(envelope_source, envelope_converted).mean())
            rows.append(row)
    return rows
