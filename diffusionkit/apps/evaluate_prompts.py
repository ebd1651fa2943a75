"""``evaluate``'s prompt adherence: do generated items show what their text prompt names?

The modality says what to check and measures it (:mod:`diffusionkit.prompt_checks`):

- :class:`~diffusionkit.prompt_checks.WordMatch`: ``n`` items per word; the share whose
  measured descriptor is the word's value (``"class"``: the class the evaluate judge names);
- :class:`~diffusionkit.prompt_checks.WordDirection`: ``n`` pairs of items from the same seeds
  whose prompts differ in one word; the share of pairs where the ``high`` word's item measures
  more. Checks of paraphrases the model never trained on are reported apart (``unseen``).

Items are generated from the prompt alone (no class label), guided on the prompt.
"""

from __future__ import annotations

from typing import Callable

import torch
from omegaconf import DictConfig
from torch import Tensor

from diffusionkit.apps.common import sample_in_batches, text_condition
from diffusionkit.bundle import LoadedModel
from diffusionkit.errors import UsageError
from diffusionkit.evaluation import Judge
from diffusionkit.prompt_checks import JUDGED_CLASS, PromptCheck, WordDirection, WordMatch


def prompt_scores(model: LoadedModel, judge: Judge | None, cfg: DictConfig,
                  keep: Callable[[PromptCheck], bool] = lambda check: True) -> list[dict]:
    """One row per prompt check word (match) or word pair (direction) of the checks ``keep``
    keeps; see the module (direction checks need no ``judge``)."""
    name = text_condition(model)
    if name is None:
        return []
    checks = model.modality.prompt_checks()
    if not checks:
        raise UsageError(f"the {type(model.modality).__name__} plugin offers no prompt checks; set prompts.n=0")
    settings = cfg.copy()
    settings.guidance = cfg.prompts.guidance
    rows = []
    for check in filter(keep, checks):
        rows += _match_rows(model, judge, settings, name, check) if isinstance(check, WordMatch) else \
            [_direction_row(model, judge, settings, name, check)]
    return rows


def _generate(model: LoadedModel, settings: DictConfig, name: str, prompt: str) -> Tensor:
    """``prompts.n`` items for one prompt, from the same seeds for every prompt."""
    n = int(settings.prompts.n)
    value = model.module.conditioners[name].read_input(prompt, model.modality)
    conditions = {name: value.unsqueeze(0).expand(n, *value.shape).to(model.module.device)}
    generator = torch.Generator().manual_seed(int(settings.seed))
    return sample_in_batches(model, n, None, settings, settings.batch_size, generator, conditions=conditions)


def _measured(model: LoadedModel, judge: Judge, items: Tensor, descriptor: str) -> list:
    if descriptor == JUDGED_CLASS:
        return [model.classes[int(i)] for i in judge.predict(items)]
    described = model.modality.describe(items)
    missing = [d for d in described if descriptor not in d]
    if missing:
        raise UsageError(f"the plugin's describe() measures no '{descriptor}' (it gives {sorted(missing[0])})")
    return [d[descriptor] for d in described]


def _agrees(measured: float | str, expected: str, split: float | None) -> bool:
    if split is None:
        return measured == expected
    return (float(measured) < split) == (expected == "low")


def _match_rows(model: LoadedModel, judge: Judge, settings: DictConfig, name: str, check: WordMatch) -> list[dict]:
    rows = []
    for word, expected in check.words.items():
        prompt = check.template.format(word=word)
        measured = _measured(model, judge, _generate(model, settings, name, prompt), check.descriptor)
        rate = sum(_agrees(m, expected, check.split) for m in measured) / len(measured)
        rows.append({"check": check.name, "kind": "match", "prompt": prompt, "expected": expected,
                     "rate": rate, "unseen": word in check.unseen})
    return rows


def _direction_row(model: LoadedModel, judge: Judge, settings: DictConfig, name: str, check: WordDirection) -> dict:
    low_prompt, high_prompt = (check.template.format(word=w) for w in (check.low, check.high))
    low, high = (_measured(model, judge, _generate(model, settings, name, p), check.descriptor)
                 for p in (low_prompt, high_prompt))
    moved = [float(h) > float(lo) for lo, h in zip(low, high)]
    return {"check": check.name, "kind": "direction", "prompt": f"{low_prompt} -> {high_prompt}",
            "expected": f"{check.descriptor} up", "rate": sum(moved) / len(moved), "unseen": check.unseen,
            "low_mean": sum(map(float, low)) / len(low), "high_mean": sum(map(float, high)) / len(high)}


def summary(rows: list[dict]) -> dict[str, float]:
    """Mean rate per check name and kind, seen and unseen words apart."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        key = f"{row['check']}{' (unseen words)' if row['unseen'] else ''}"
        groups.setdefault(key, []).append(row["rate"])
    return {key: sum(rates) / len(rates) for key, rates in groups.items()}


def format_rows(rows: list[dict]) -> list[str]:
    lines = [f"prompt adherence ({len(rows)} prompts):"]
    for row in rows:
        extra = f" ({row['low_mean']:.3g} -> {row['high_mean']:.3g})" if row["kind"] == "direction" else ""
        unseen = " [unseen words]" if row["unseen"] else ""
        lines.append(f"  {row['check']:<22} {row['prompt']!r:<44} {row['rate']:6.1%}{extra}{unseen}")
    lines += [f"  {key:<40} {rate:6.1%}" for key, rate in summary(rows).items()]
    return lines
