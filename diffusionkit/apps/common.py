"""Pieces every command shares: output folders, labels, batched sampling and recipes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from diffusionkit.bundle import LoadedModel, load_model
from diffusionkit.config import missing_values
from diffusionkit.errors import UsageError
from diffusionkit.names import inside
from diffusionkit.nets.conditioners import LABEL
from diffusionkit.options import check_like_defaults
from diffusionkit.out_folder import make_folder
from diffusionkit.plugin_calls import plugin_call


def require_values(cfg: DictConfig) -> None:
    """Fail with one line when a mandatory value (``???``) was not given."""
    missing = missing_values(cfg)
    if missing:
        raise UsageError(f"missing value: give {' '.join(f'{k}=...' for k in missing)}")


def check_output(out: str | None) -> None:
    """Refuse an existing non-empty ``out=`` (so nothing earlier is overwritten), before any work."""
    if out:
        path = Path(out).expanduser()
        if path.exists() and any(path.iterdir()):
            raise UsageError(f"output folder '{path}' is not empty; choose a new out= (nothing was overwritten)")


def output_dir(command: str, out: str | None) -> Path:
    """A fresh folder for a command's outputs (see :func:`check_output`)."""
    check_output(out)
    if out:
        path = Path(out).expanduser()
    else:
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        path = Path("outputs") / command / stamp
        suffix = 1
        while path.exists():
            path = Path("outputs") / command / f"{stamp}_{suffix}"
            suffix += 1
    return make_folder(path)


def resolve_label(label: Any, classes: list[str]) -> int:
    """A class given by name or by index, checked against the model's classes."""
    if not classes or len(classes) < 2:
        raise UsageError("this model is unconditional: it takes no label=")
    if str(label) in classes:
        return classes.index(str(label))
    if isinstance(label, int) or str(label).lstrip("-").isdigit():
        index = int(label)
        if 0 <= index < len(classes):
            return index
    raise UsageError(f"unknown label '{label}'; this model's classes: {', '.join(classes)}")


def edit_labels(n: int, label: Any, classes: list[str]) -> Tensor | None:
    """Labels for edits of an input: the given class, or None (the null class: the input alone
    steers the result)."""
    return None if label is None else labels_for(n, label, classes)


def labels_for(n: int, label: Any, classes: list[str]) -> Tensor | None:
    """``n`` labels: the given class, or every class in turn, or None (unconditional)."""
    if label is not None:
        return torch.full((n,), resolve_label(label, classes), dtype=torch.long)
    if len(classes) > 1:
        return torch.arange(n) % len(classes)
    return None


#: a command input naming a condition's negative value: ``negative_prompt="..."``
NEGATIVE = "negative_"


def sample_in_batches(model: LoadedModel, n: int, labels: Tensor | None, cfg: DictConfig, batch_size: int,
                      generator: torch.Generator, **kwargs: Any) -> Tensor:
    """``model.module.sample`` over ``n`` items in chunks, with the sampler settings of ``cfg``.

    Tensor keyword arguments with a batch axis of length ``n`` (also those in ``conditions=``)
    are chunked alongside.
    """
    guide = guided_names(model, labels, kwargs.get("conditions"), cfg.get("guide"))
    negatives = negative_conditions(model, cfg, n)
    if negatives:
        kwargs["negatives"] = negatives
    chunks = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        chunk_kwargs = {k: _items(v, n, start, stop) for k, v in kwargs.items()}
        chunks.append(model.module.sample(
            stop - start, None if labels is None else labels[start:stop].to(model.module.device),
            sampler=cfg.sampler.name, steps=cfg.steps, spacing=cfg.sampler.spacing,
            guidance_scale=cfg.guidance, sampler_options=dict(cfg.sampler.get("options") or {}),
            generator=generator, guide=guide, **chunk_kwargs,
        ).float().cpu())
    return torch.cat(chunks)


def guided_names(model: LoadedModel, labels: Tensor | None, conditions: dict[str, Tensor] | None,
                 guide: Any) -> list[str] | None:
    """The command's ``guide=`` (the conditions guidance acts on) checked against the model and
    what was given: None where the option is unset (every given condition with a learned null)."""
    if guide is None:
        return None
    names = [str(name) for name in guide]
    try:
        model.module.guided_conditions(labels, conditions, names)
    except ValueError as err:
        raise UsageError(f"guide={names}: {err}") from None
    return names


def _items(value: Any, n: int, start: int, stop: int) -> Any:
    """Items ``start:stop`` of a tensor with a batch axis of length ``n`` (also inside a dict of
    them, such as ``conditions=``); anything else as it is."""
    if isinstance(value, dict):
        return {k: _items(v, n, start, stop) for k, v in value.items()}
    return value[start:stop] if isinstance(value, Tensor) and value.shape[:1] == (n,) else value


def first_items(conditions: dict[str, Tensor] | None, n: int) -> dict[str, Tensor]:
    """The first ``n`` items of each condition."""
    return {k: v[:n] for k, v in (conditions or {}).items()}


def open_model(cfg: DictConfig, n: int) -> tuple[LoadedModel, dict[str, Tensor]]:
    """The model of ``cfg.ckpt`` with the command's named inputs applied, and the sampling
    keyword arguments they make. A named input is the model's conditioning file
    (``sketch=FILE``) or one of its modality's media options (``output_rate=44100``,
    ``midi=true``; also accepted as ``media.<key>=``)."""
    return prepared_model(load_model(cfg.ckpt, **runtime(cfg)), cfg, n)


def runtime(cfg: DictConfig) -> dict[str, Any]:
    """The ``device=`` and ``precision=`` a command's config asks for (see :mod:`diffusionkit.devices`),
    and the ``adapter_scale=`` an adapter is folded in with (:mod:`diffusionkit.adapters`)."""
    return {"device": str(cfg.get("device", "auto")), "precision": str(cfg.get("precision", "auto")),
            "adapter_scale": float(cfg.get("adapter_scale", 1.0))}


def prepared_model(model: LoadedModel, cfg: DictConfig, n: int) -> tuple[LoadedModel, dict[str, Tensor]]:
    """An already loaded model with the named inputs of ``cfg`` applied (see :func:`open_model`);
    a long-lived process (``diffusionkit studio``) keeps one model and prepares it per request."""
    inputs = dict(cfg.get("inputs") or {})
    named = [name for name in model.module.conditioners if name != LABEL]
    given = {k: inputs.pop(k) for k in list(inputs) if k in named}
    for name in [k for k in inputs if k.startswith(NEGATIVE) and k[len(NEGATIVE):] in named]:
        inputs.pop(name)  # read where sampling starts (negative_conditions)
    also = ", ".join(f"{name}={model.module.conditioners[name].input_hint}" for name in named)
    media = {**dict(cfg.get("media") or {}), **inputs}
    check_like_defaults(media, model.config.modality)
    model = model.with_media(media, also_takes=also)
    return model, condition_inputs(model, given, n)


def condition_inputs(model: LoadedModel, given: dict[str, Any], n: int) -> dict[str, Tensor]:
    """The model's named conditions (other than class labels) from the command's ``<name>=...``
    (a sketch's file, a number...), each repeated for ``n`` items. A condition the model was
    trained always to have (``drop=0``) must be given; another one left out is unconditioned."""
    conditions: dict[str, Tensor] = {}
    for name, conditioner in model.module.conditioners.items():
        if name == LABEL:
            continue
        if name not in given:
            if conditioner.drop == 0:
                raise UsageError(f"this model is conditioned on a {name}: pass {name}={conditioner.input_hint}")
            continue
        with plugin_call(getattr(conditioner, "source", conditioner), f"cannot read {name}={given[name]}"):
            value = conditioner.read_input(str(given[name]), model.modality)
        conditions[name] = value.unsqueeze(0).expand(n, *value.shape).to(model.module.device)
    return conditions


def text_condition(model: LoadedModel) -> str | None:
    """The name of the model's text-prompt condition (one that needs a text encoder), or None."""
    names = [name for name, c in model.module.conditioners.items() if getattr(c, "needs_text_encoder", False)]
    return names[0] if names else None


def negative_conditions(model: LoadedModel, cfg: DictConfig, n: int) -> dict[str, Tensor]:
    """The command's ``negative_<name>=...`` inputs (``negative_prompt="muffled"``): values the
    unconditional branch of classifier-free guidance takes instead of the null value, so the
    result is steered away from them; each repeated for ``n`` items."""
    negatives: dict[str, Tensor] = {}
    for key, text in dict(cfg.get("inputs") or {}).items():
        name = str(key)[len(NEGATIVE):]
        if not str(key).startswith(NEGATIVE) or name not in model.module.conditioners or name == LABEL:
            continue
        conditioner = model.module.conditioners[name]
        if name not in (cfg.get("inputs") or {}):
            raise UsageError(f"{key}= steers away from a {name} while {name}= steers towards one: pass {name}= too")
        if conditioner.drop == 0 or float(cfg.get("guidance", 1.0)) == 1.0:
            raise UsageError(f"{key}= needs guidance on {name}: the model must be trained with {name} dropped "
                             f"and guidance= above 1 (it is {cfg.get('guidance')})")
        with plugin_call(getattr(conditioner, "source", conditioner), f"cannot read {key}={text}"):
            value = conditioner.read_input(str(text), model.modality)
        negatives[name] = value.unsqueeze(0).expand(n, *value.shape).to(model.module.device)
    return negatives


def item_names(n: int, labels: Tensor | None, classes: list[str]) -> list[str]:
    """``000``, ``001``... with the class name appended when items have labels."""
    return [f"{i:03d}" if labels is None else f"{i:03d}_{classes[int(labels[i])]}" for i in range(n)]


def save_items(model: LoadedModel, samples: Tensor, labels: Tensor | None, out: Path,
               names: list[str] | None = None) -> list[Path]:
    """One media file set per item (named by index and class unless ``names`` are given, each
    made a plain file stem inside ``out``), plus the overview grid."""
    written: list[Path] = []
    for x, name in zip(samples, names or item_names(len(samples), labels, model.classes)):
        written += model.modality.save(x, inside(out, name))
    written += model.modality.save_grid(samples, inside(out, "grid"))
    return written


def repeat(item: Tensor, n: int) -> Tensor:
    """One item ``[C, *spatial]`` as a batch of ``n`` views."""
    return item.unsqueeze(0).expand(n, *item.shape)


def finish(out: Path, cfg: DictConfig, model: LoadedModel, written: list[Path], **extra: Any) -> Path:
    """Write the recipe (with ``extra`` entries) beside a command's files and say where they are."""
    write_recipe(out, cfg, model, **extra)
    print(f"wrote {len(written) + 1} files to {out}")
    return out


def write_recipe(out: Path, cfg: DictConfig, model: LoadedModel, **extra: Any) -> Path:
    """Everything needed to make the outputs again: command config, seed, checkpoint and hash."""
    recipe = {
        "command": OmegaConf.to_container(cfg, resolve=True),
        "seed": cfg.get("seed"),
        "checkpoint": {"path": str(model.path.resolve()), "sha256": model.sha256},
        "classes": model.classes,
        "device": model.device,
        "precision": model.precision,
        **({"adapter": {"base": model.base, "scale": model.adapter_scale}} if model.base else {}),
        **({"cascade": [{"path": str(stage.path.resolve()), "sha256": stage.sha256,
                         "model_config": OmegaConf.to_container(stage.config, resolve=True)}
                        for stage in model.stages]} if model.stages else {}),
        **extra,
        "model_config": OmegaConf.to_container(model.config, resolve=True),
    }
    path = out / "recipe.yaml"
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(recipe)))
    return path
