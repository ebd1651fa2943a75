"""Portable model bundles: one safetensors file holding weights, resolved config and classes.

A bundle (or a Lightning checkpoint of a diffusionkit run) from elsewhere is data, not code:
weights load through safetensors or ``torch.load(weights_only=True)``, and the config may
build only what :mod:`diffusionkit.trusted_targets` allows, checked before anything is built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from diffusionkit.adapters import ADAPTER_KIND, MAX_SCALE, apply_adapter, base_path, read_adapter
from diffusionkit.atomic import atomic_path
from diffusionkit.checkpoint_file import load_checkpoint_file
from diffusionkit.devices import prepare_to_sample, resolve_device, resolve_precision
from diffusionkit.diffusion.model import DiffusionModel, model_state
from diffusionkit.nets.conditioned_net import upgrade_legacy_names
from diffusionkit.errors import UsageError, first_line
from diffusionkit.modality import Modality
from diffusionkit.names import check_class_names
from diffusionkit.plugins import named_bundles
from diffusionkit.recognizer import Recognizer, load_recognizer
from diffusionkit.trusted_targets import check_config

FORMAT = "diffusionkit.bundle/1"
#: the key of diffusionkit's metadata inside a Lightning checkpoint.
CHECKPOINT_KEY = "diffusionkit"
#: what to do with a model of another kind than the command needs.
#: the longest config text a bundle may hold (diffusionkit's own are a few kilobytes).
MAX_CONFIG_CHARS = 1 << 20
#: the most values (channels x spatial) one item of a loaded bundle may have: 16 Mi, 64 MB in float32.
MAX_ITEM_VALUES = 1 << 24
KIND_HINTS = {
    "autoencoder": "; train a diffusion model on it: diffusionkit train ... autoencoder=pretrained "
                   "autoencoder.bundle=<this file>",
}


@dataclass
class LoadedModel:
    """A model ready to sample: its DiffusionModel (eval mode), modality, run config and classes,
    and the device and precision (``fp32``/``bf16``) it samples in."""

    module: DiffusionModel
    modality: Modality
    config: DictConfig
    classes: list[str]
    path: Path
    sha256: str
    device: str = "cpu"
    precision: str = "fp32"
    #: the classifier that names an input's class (``label=auto``), if the bundle carries one
    recognizer: Recognizer | None = None
    #: for an adapter (:mod:`diffusionkit.adapters`): the base bundle it was folded into, and how much
    base: str | None = None
    adapter_scale: float | None = None
    #: for a cascade (``ckpt=BASE,UPSAMPLER``): every stage as loaded, base first; the module is
    #: then a :class:`~diffusionkit.diffusion.cascade.Cascade` and the rest is the last stage's
    stages: tuple[LoadedModel, ...] = ()

    @property
    def unrecognized_classes(self) -> list[str]:
        """The classes ``label=auto`` cannot name: those an adapter added after its base's
        recognizer was trained (empty without a recognizer: the model names all of its own)."""
        if self.recognizer is None:
            return []
        return self.classes[self.recognizer.num_classes:]

    def recognize(self, x: Tensor) -> Tensor | None:
        """The class index of each item ``[n, C, *spatial]``: by the bundle's recognizer
        (:mod:`diffusionkit.recognizer`) when it has one, else by the diffusion model itself
        (:meth:`DiffusionModel.infer_labels`); None for an unconditional model."""
        if self.recognizer is not None:
            return self.recognizer(x)
        return self.module.infer_labels(x.to(self.module.device))

    def _untrained_condition(self, key: str) -> str:
        """`` (not trained with ...)`` where ``key`` names a condition some model takes (a prompt,
        an installed ``cond=`` choice, or the negative of one) that this one was not trained with."""
        from diffusionkit.config import available_options

        named = key.removeprefix("negative_")
        cond = "text" if named == "prompt" else named
        if cond == "none" or cond not in available_options().get("cond", []):
            return ""
        return (f" (this model was trained without a '{key}' condition: cond={cond} trains one; it conditions on: "
                f"{', '.join(self.module.conditioners) or 'nothing'})")

    def with_media(self, options: dict[str, Any], also_takes: str = "") -> LoadedModel:
        """The same model whose modality writes files differently (``output_rate=44100``,
        ``midi=true``): options are modality config keys that leave the model space unchanged.
        An unknown one is refused in one line naming what the model takes (``also_takes`` first)
        and the conditions it was trained with (``prompt=`` needs a model trained with ``cond=text``)."""
        if not options:
            return self
        from diffusionkit.build import build_modality

        check_config({"modality": {"options": OmegaConf.to_container(OmegaConf.create(dict(options)))}},
                     "media options")  # values, never something to build
        known = _modality_options(self.config.modality, self.modality)
        unknown = sorted(set(options) - set(known))
        if unknown:
            takes = ", ".join([*filter(None, [also_takes]), *known])
            raise UsageError(f"unknown option '{unknown[0]}' for this model; it takes: {takes}"
                             + (self._untrained_condition(unknown[0]) or _other_commands(unknown[0])))
        config = self.config.copy()
        with open_dict(config):
            config.modality.merge_with(options)
        modality = build_modality(config)
        if modality.shape != self.modality.shape:
            raise UsageError(f"options {dict(options)} would change the model's data shape {self.modality.shape} "
                             f"-> {modality.shape}; only options that change how files are written are allowed")
        if modality.space != self.modality.space:
            raise UsageError(f"options {dict(options)} would change the model space this model was trained in (same "
                             f"shape, other values); only options that change how files are read or written are allowed")
        return dataclasses.replace(self, modality=modality, config=config)


def _other_commands(key: str) -> str:
    """`` ('target' is an option of convert ...)`` where another command takes ``key``; else ''."""
    from diffusionkit.config import commands_taking

    commands = commands_taking(key)
    if not commands or len(commands) > 3:  # none, or an option most commands take (seed=, n=): no hint
        return ""
    named = commands[0] if len(commands) == 1 else f"{', '.join(commands[:-1])} and {commands[-1]}"
    return f" ('{key}' is an option of {named}: e.g. diffusionkit {commands[0]} ... {key}=...)"


def _modality_options(stored: DictConfig, modality: Modality) -> list[str]:
    """The options a model's modality takes: those its config stores, then its class's other
    constructor parameters (a limit added after the bundle was made, e.g. ``max_seconds``)."""
    names = [k for k in stored if k != "_target_"]
    parameters = inspect.signature(type(modality).__init__).parameters.values()
    return names + [p.name for p in parameters if p.name != "self" and p.name not in names
                    and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


#: Top-level config keys that name the training machine's folders, not the model: a bundle or
#: checkpoint given to someone else must not carry them.
MACHINE_KEYS = ("out", "resume")


def portable_config(config: DictConfig) -> DictConfig:
    """``config`` resolved, without the keys that name the training machine's folders."""
    plain = OmegaConf.to_container(config, resolve=True)
    for key in MACHINE_KEYS:
        plain.pop(key, None)
    return OmegaConf.create(plain)


def run_metadata(config: DictConfig, classes: list[str], kind: str = "diffusion", **extra: str) -> dict[str, str]:
    """The plain-text metadata a bundle or checkpoint carries: enough to rebuild the model, and
    no folder of the machine it was trained on (:data:`MACHINE_KEYS`)."""
    return {
        "format": FORMAT,
        "kind": kind,
        "config": OmegaConf.to_yaml(portable_config(config)),
        "classes": json.dumps(list(classes)),
        **extra,
    }


def bundle_weights(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """What a bundle stores, from a model's or a training module's state dict (or a checkpoint's,
    old or new: see :func:`~diffusionkit.diffusion.model.model_state`): the EMA weights as
    ``net.*`` (the net's own in a model without one), a latent model's frozen autoencoder and
    scale as ``latent.*`` (so the bundle needs nothing else), a first stage's ``autoencoder.*``."""
    state = model_state(state)
    weights = {f"net.{k.removeprefix('ema.module.')}": v for k, v in state.items() if k.startswith("ema.module.")}
    if not weights:  # a model built without an EMA (loaded to sample): its net holds the EMA weights
        weights = {k: v for k, v in state.items() if k.startswith("net.")}
    weights.update({k: v for k, v in state.items() if k.startswith(("latent.", "autoencoder."))})
    return weights


def diffusion_weights(module: nn.Module) -> dict[str, Tensor]:
    """The bundle weights of a DiffusionModel or of its training module (see :func:`bundle_weights`)."""
    return bundle_weights(module.state_dict())


def save_bundle(path: str | Path, weights: dict[str, Tensor], metadata: dict[str, str]) -> Path:
    """Write weights and metadata as one ``.safetensors`` file, atomically: a crash mid-write
    never leaves a half-written bundle where a good one was."""
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp), metadata=metadata)
    return path


def bundle_kind(path: Path) -> str:
    """The ``kind`` a ``.safetensors`` bundle's metadata names (``diffusion`` where none), read
    without loading its tensors; unreadable files are left to :func:`read_bundle` to report."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            kind = (f.metadata() or {}).get("kind", "diffusion")
    except (SafetensorError, OSError, ValueError):
        return "diffusion"
    return kind if isinstance(kind, str) else "diffusion"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_bundle(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """All tensors and the metadata of a ``.safetensors`` bundle (UsageError if unreadable)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UsageError(f"cannot read bundle '{path}': {str(err).splitlines()[0]}") from None
    return weights, metadata


def _read_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    checkpoint = load_checkpoint_file(path)
    metadata = checkpoint.get(CHECKPOINT_KEY) if isinstance(checkpoint, dict) else None
    if not metadata:
        raise UsageError(f"'{path}' is not a diffusionkit checkpoint (no '{CHECKPOINT_KEY}' metadata)")
    state = checkpoint.get("state_dict", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise UsageError(f"'{path}': its '{CHECKPOINT_KEY}' metadata is not a mapping of names to text")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise UsageError(f"'{path}': its state_dict is not a mapping of names to tensors")
    return bundle_weights(state), metadata


def read_run(path: str | Path, kind: str, for_training: bool = True) -> tuple[dict[str, Tensor], dict[str, str],
                                                                             DictConfig]:
    """Weights, metadata and (checked) config of a bundle or checkpoint of the given kind; read
    not ``for_training``, the config's training-only parts are checked by name alone (see
    :func:`~diffusionkit.trusted_targets.check_config`)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"checkpoint '{path}' not found; pass ckpt=<model.safetensors or a .ckpt file>")
    weights, metadata = (_read_checkpoint if path.suffix == ".ckpt" else read_bundle)(path)
    return checked_run(path, weights, metadata, kind, for_training)


def checked_run(path: Path, weights: dict[str, Tensor], metadata: dict[str, str], kind: str,
                for_training: bool = True) -> tuple[dict[str, Tensor], dict[str, str], DictConfig]:
    """The weights, metadata and checked config of one model read from ``path`` (a file's, or
    one stage's of a cascade bundle), refused unless it is a diffusionkit model of ``kind``."""
    if metadata.get("format") != FORMAT:
        raise UsageError(f"'{path}' is not a diffusionkit bundle (format '{metadata.get('format')}')")
    found = metadata.get("kind", "diffusion")
    if not isinstance(found, str):
        raise UsageError(f"'{path}' names no kind of model ('kind' is not text)")
    if found != kind:
        raise UsageError(f"'{path}' holds {article(found)} {found} model where {article(kind)} {kind} model is needed"
                         + (KIND_HINTS.get(found, "")))
    config = _checked_config(path, metadata.get("config", ""), for_training)
    return weights, metadata, config


def article(word: str) -> str:
    """``a`` or ``an`` before ``word`` (by its first letter: enough for the kinds of model)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _checked_config(path: Path, text: str, for_training: bool = True) -> DictConfig:
    """A bundle's config, parsed with YAML's safe loader and checked (see :func:`check_config`).
    Anchors and aliases are refused before parsing (a config written by diffusionkit has none,
    and nested aliases expand exponentially: a 2.5 KB "billion laughs" takes minutes)."""
    if len(text) > MAX_CONFIG_CHARS:
        raise UsageError(f"'{path}' holds a config of {len(text):,} characters, more than the {MAX_CONFIG_CHARS:,} a "
                         f"bundle may have")
    if _has_aliases(text):
        raise UsageError(f"'{path}' holds a config with YAML anchors or aliases (&, *), which diffusionkit never "
                         f"writes; refusing to expand it")
    try:
        config = OmegaConf.create(text)
    except Exception as err:  # YAML and OmegaConf errors alike: the text is not a config
        raise UsageError(f"'{path}' holds an unreadable config ({str(err).splitlines()[0]})") from None
    if not isinstance(config, DictConfig):
        raise UsageError(f"'{path}' holds no config mapping; it is not a diffusionkit bundle")
    check_config(OmegaConf.to_container(config, resolve=False), f"bundle '{path}'", for_training)
    return config


def _has_aliases(text: str) -> bool:
    """Whether YAML ``text`` uses anchors or aliases (read token by token, never expanded)."""
    try:
        return any(isinstance(t, (yaml.AnchorToken, yaml.AliasToken)) for t in yaml.scan(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return False  # not YAML: the parser says so in one line


def _checked_classes(path: Path, text: str) -> list[str]:
    """A bundle's class names, each a plain, unique name (see :func:`check_class_names`)."""
    try:
        classes = json.loads(text)
    except (TypeError, ValueError):
        raise UsageError(f"bundle '{path}': its classes are not readable JSON") from None
    return check_class_names(classes, f"bundle '{path}'")


def _check_item_size(path: Path, shape: tuple[int, ...]) -> None:
    """Refuse a bundle whose items would not fit in memory (a config is data: ``size: 1000000``)."""
    values = math.prod(int(s) for s in shape)
    if values > MAX_ITEM_VALUES:
        raise UsageError(f"bundle '{path}': its items have shape {list(shape)} ({values:,} values), more than the "
                         f"{MAX_ITEM_VALUES:,} a bundle may ask for; it is not a model this machine can sample")


def _check_weights_fit(path: Path, weights: dict[str, Tensor], expected: dict[str, tuple[int, ...]]) -> None:
    """The weights stored for ``net.*`` and ``latent.*`` have exactly the names and shapes the
    config's model has (checked before the model is allocated, so its size is bounded by the file)."""
    stored = {k: tuple(v.shape) for k, v in weights.items() if k.startswith(("net.", "latent."))}
    for name in sorted(expected.keys() | stored.keys()):
        if expected.get(name) != stored.get(name):
            have = "nothing" if name not in stored else f"shape {list(stored[name])}"
            need = "nothing" if name not in expected else f"shape {list(expected[name])}"
            raise UsageError(f"weights in '{path}' do not fit its config: {name} holds {have}, the config's model "
                             f"needs {need}")


def _check_finite(path: Path, weights: dict[str, Tensor]) -> None:
    """Every stored weight is a finite number: a NaN or an infinity (a damaged file, or a run that
    diverged) would only make silent or broken media. Each tensor's sum is NaN or infinite when one
    of its values is (2 ms for the starter, against 14-120 ms for ``isfinite`` tensor by tensor)."""
    names = sorted(name for name, tensor in weights.items() if tensor.is_floating_point())
    sums = torch.stack([weights[name].double().sum() for name in names]) if names else torch.zeros(0)
    bad = next((name for name, total in zip(names, sums.tolist()) if not math.isfinite(total)), None)
    if bad is not None:
        raise UsageError(f"weights in '{path}' hold NaN or infinite values ({bad}): the file is damaged or its "
                         "training diverged; train it again, or get a new copy")


def subset(weights: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The tensors under ``prefix.``, with the prefix removed."""
    return {k.removeprefix(prefix + "."): v for k, v in weights.items() if k.startswith(prefix + ".")}


#: what a run folder given as ckpt= is read for, in order: train's bundle (or finetune's merged
#: one), then finetune's adapter
RUN_FOLDER_BUNDLES = ("model.safetensors", "adapter.safetensors")


def resolve_checkpoint(ckpt: str | Path) -> Path:
    """A checkpoint path as given, the bundle inside a run folder (:data:`RUN_FOLDER_BUNDLES`), or
    the path of a bundle a plugin ships under that name."""
    path = Path(ckpt).expanduser()
    if path.is_dir():
        inside = next((path / name for name in RUN_FOLDER_BUNDLES if (path / name).is_file()), None)
        if inside is None:
            raise UsageError(f"'{path}' is a folder without {' or '.join(RUN_FOLDER_BUNDLES)} in it; pass "
                             "ckpt=<a bundle file, or the out= folder of a finished train or finetune>")
        return inside
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path
    shipped = named_bundles()
    if str(ckpt) in shipped:
        return shipped[str(ckpt)]
    names = f"; bundles shipped by plugins: {', '.join(sorted(shipped))}" if shipped else ""
    raise UsageError(f"checkpoint '{ckpt}' not found; pass ckpt=<model.safetensors or a .ckpt file>{names}")


def cascade_parts(ckpt: Any) -> list[str] | None:
    """The stages of a cascade named by ``ckpt`` (``BASE,UPSAMPLER[,...]`` or a list), or None
    for one model."""
    parts = [str(p) for p in ckpt] if isinstance(ckpt, (list, tuple, ListConfig)) else str(ckpt).split(",")
    parts = [p.strip() for p in parts if p.strip()]
    return parts if len(parts) > 1 else None


def load_model(path: Any, device: str | torch.device = "cpu", precision: str = "fp32",
               adapter_scale: float = 1.0) -> LoadedModel:
    """Load a diffusion bundle (``.safetensors``), a Lightning checkpoint (``.ckpt``), a bundle
    a plugin ships (by name) or an adapter (its base with the adapter folded in, scaled by
    ``adapter_scale``: :mod:`diffusionkit.adapters`) to sample on ``device`` (``auto``: CUDA
    where present) in ``precision`` (``fp32``, ``bf16`` autocast, or ``auto``; see
    :mod:`diffusionkit.devices`). Several, comma-separated (``BASE,UPSAMPLER``), load as a
    cascade (:func:`load_cascade`), as does a cascade bundle (:func:`save_cascade_bundle`)."""
    parts = cascade_parts(path)
    if parts:
        return load_cascade(parts, device, precision, adapter_scale)
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    path = resolve_checkpoint(path)
    if path.suffix != ".ckpt" and path.is_file() and bundle_kind(path) == ADAPTER_KIND:
        return _load_adapter(path, device, precision, float(adapter_scale))
    if path.suffix != ".ckpt" and path.is_file() and bundle_kind(path) == CASCADE_KIND:
        return _load_cascade_bundle(path, device, precision)
    weights, metadata, config = read_run(path, "diffusion", for_training=False)
    return _loaded(path, weights, metadata, config, device, precision, file_sha256(path))


def _loaded(path: Path, weights: dict[str, Tensor], metadata: dict[str, str], config: DictConfig,
            device: torch.device, precision: str, sha256: str) -> LoadedModel:
    """The model of checked weights, metadata and config, built and loaded on ``device``."""
    from diffusionkit.build import (NoInitialisation, build_diffusion_model, build_modality, num_classes_for,
                                    weight_shapes)

    weights = upgrade_legacy_names(weights, "net.")
    classes = _checked_classes(path, metadata.get("classes", "[]"))
    try:
        modality = build_modality(config)
        _check_item_size(path, modality.shape)
        _check_weights_fit(path, weights, weight_shapes(config, modality, num_classes_for(classes)))
        _check_finite(path, weights)
        with NoInitialisation():  # every weight is loaded below
            module = build_diffusion_model(config, modality, num_classes=num_classes_for(classes), ema=False)
    except UsageError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError) as err:  # a value the model cannot be built from
        raise UsageError(f"'{path}': its config cannot build a model ({first_line(err)}); the file is damaged or was "
                         "written by another version: train it again, or ask its author for a new copy") from err
    try:
        module.net.load_state_dict(subset(weights, "net"))
        if module.latent is not None:
            module.latent.load_state_dict(subset(weights, "latent"))
    except RuntimeError as err:
        raise UsageError(f"weights in '{path}' do not fit its config: {str(err).splitlines()[0]}") from None
    recognizer = load_recognizer(path, weights, metadata, modality, len(classes))
    module.to(device).eval()
    prepare_to_sample(module, precision, len(modality.shape) - 1)
    return LoadedModel(module, modality, config, classes, path, sha256, str(device), precision, recognizer)


def load_cascade(paths: list[str], device: str | torch.device = "cpu", precision: str = "fp32",
                 adapter_scale: float = 1.0) -> LoadedModel:
    """A base model and its super-resolution stages (:class:`~diffusionkit.diffusion.cascade.Cascade`),
    sampled one after the other; class-conditional stages must share the base's classes."""
    return _cascade_of([load_model(p, device, precision, adapter_scale) for p in paths], ",".join(paths))


def _cascade_of(stages: list[LoadedModel], named: str) -> LoadedModel:
    from diffusionkit.diffusion.cascade import Cascade

    base = stages[0]
    nested = [str(stage.path) for stage in stages if stage.stages]
    if nested:
        raise UsageError(f"ckpt={named}: {nested[0]} is a cascade itself; name its stages one by one")
    for index, stage in enumerate(stages[1:], start=2):
        if stage.module.num_classes and stage.classes != base.classes:
            raise UsageError(f"stage {index} of the cascade ({stage.path}) has the classes {stage.classes}, "
                             f"the base ({base.path}) {base.classes}; a cascade's stages share one set")
    try:
        cascade = Cascade([stage.module for stage in stages])
    except ValueError as err:
        raise UsageError(f"ckpt={named}: {err}") from None
    last = stages[-1]
    return dataclasses.replace(last, module=cascade, classes=base.classes, recognizer=None, stages=tuple(stages))


#: the ``kind`` of a bundle that holds every stage of a cascade
CASCADE_KIND = "cascade"
#: the most stages a cascade bundle may hold
MAX_STAGES = 8


def save_cascade_bundle(path: Path, stages: list[tuple[dict[str, Tensor], dict[str, str]]]) -> Path:
    """One ``.safetensors`` file holding a cascade's stages (base first): each stage's bundle
    weights under ``stage<i>.`` and its metadata entries under ``stage<i>.`` as well."""
    weights = {f"stage{i}.{k}": v for i, (w, _) in enumerate(stages) for k, v in w.items()}
    metadata = {"format": FORMAT, "kind": CASCADE_KIND, "stages": str(len(stages)),
                **{f"stage{i}.{k}": v for i, (_, m) in enumerate(stages) for k, v in m.items()}}
    return save_bundle(path, weights, metadata)


def _load_cascade_bundle(path: Path, device: torch.device, precision: str) -> LoadedModel:
    """A cascade bundle's stages, each checked as a bundle of its own, sampled as one cascade."""
    weights, metadata = read_bundle(path)
    count = metadata.get("stages", "")
    if not count.isdigit() or not 2 <= int(count) <= MAX_STAGES:
        raise UsageError(f"'{path}' is a cascade bundle whose 'stages' ({count!r}) is not a count from 2 to "
                         f"{MAX_STAGES}")
    sha256 = file_sha256(path)
    stages = []
    for i in range(int(count)):
        prefix = f"stage{i}."
        own = checked_run(path, subset(weights, f"stage{i}"),
                          {k[len(prefix):]: v for k, v in metadata.items() if k.startswith(prefix)},
                          "diffusion", for_training=False)
        stages.append(_loaded(path, *own, device, precision, sha256))
    return _cascade_of(stages, str(path))


def _load_adapter(path: Path, device: str | torch.device, precision: str, scale: float) -> LoadedModel:
    """An adapter's base with the adapter folded in (:func:`diffusionkit.adapters.apply_adapter`),
    after checking the base is the very file it was trained on (sha256)."""
    if not math.isfinite(scale) or abs(scale) > MAX_SCALE:
        raise UsageError(f"adapter_scale={scale} is out of range; 0 is the base, 1 the adapter as trained")
    weights, metadata = read_bundle(path)
    if metadata.get("format") != FORMAT:
        raise UsageError(f"'{path}' is not a diffusionkit bundle (format '{metadata.get('format')}')")
    adapter = read_adapter(path, weights, metadata)
    base = base_path(adapter, resolve_checkpoint)
    loaded = load_model(base, "cpu", precision)  # hashes the file it reads (a base is data, like any bundle)
    sha = loaded.sha256
    if sha != adapter.base_sha256:
        raise UsageError(f"adapter '{path}' was trained on another base than '{base}' (its sha256 differs): "
                         f"use the bundle it was trained on")
    if loaded.base is not None:
        raise UsageError(f"adapter '{path}': its base '{base}' is itself an adapter; merge that one first")
    if loaded.classes != adapter.classes[: len(loaded.classes)]:
        raise UsageError(f"adapter '{path}': its classes do not start with its base's ({', '.join(loaded.classes)})")
    apply_adapter(loaded.module, adapter, scale)
    if loaded.module.num_classes != (len(adapter.classes) if len(adapter.classes) > 1 else 0):
        raise UsageError(f"adapter '{path}' names {len(adapter.classes)} classes, its model has {loaded.module.num_classes}")
    device = resolve_device(device)
    loaded.module.to(device)
    # the base's recogniser names the base's classes, the first of the adapter's: label=auto keeps using it
    # (the diffusion model's own guess named 31% of real drums) and says which classes it cannot name
    return dataclasses.replace(loaded, classes=list(adapter.classes), path=path, sha256=file_sha256(path),
                               device=str(device), base=f"{base} (sha256 {sha[:12]})", adapter_scale=scale)
