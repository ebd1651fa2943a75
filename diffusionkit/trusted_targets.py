"""What a config from elsewhere (a bundle, a checkpoint) may build: an allowlist of objects.

Hydra resolves a ``_target_`` one attribute at a time, so ``diffusionkit.bundle.torch.load`` *is*
``torch.load``: a check of the string's prefix is no allowlist. Here a target is allowed only
when the object it resolves to is, by identity, one of

- the constructors the core's and every installed plugin's config tree names (their
  ``_target_`` values: the registry every legitimate run config is composed from), or a
  plugin's Modality class (its entry point);
- a torch layer, optimizer or learning-rate scheduler class, or Lightning's Trainer, a logger or
  a strategy class (the run's own parts, which a user may swap by override).

Resolution never leaves the package a target names (``diffusionkit.bundle.torch`` is refused at
``torch``, a module ``diffusionkit.bundle`` merely imported), imports nothing outside the core,
the installed plugins, torch and Lightning, and happens before anything is instantiated. Hydra's
other keys are checked too: ``_args_`` (positional arguments) never appears in a bundle,
``_partial_``/``_recursive_`` are booleans, ``_convert_`` one of Hydra's modes, and a value with
an interpolation (``${...}``, which could read the environment or rewrite a target at build
time) is refused: a bundle stores its config resolved.

A model loaded to sample never builds the parts only training builds (:data:`TRAINING_ONLY`:
Lightning's trainer and logger); there a target must be one of the very strings an installed
config names, and is not resolved, so sampling imports no Lightning.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import yaml

from diffusionkit.errors import UsageError
from diffusionkit.plugins import discover, forget_owned_modules, owned_modules

#: packages besides the core and the plugins whose classes a run config may name.
THIRD_PARTY_ROOTS = ("torch", "lightning")
#: (module prefix, base class path): third-party classes a run may name; classes only, never functions.
THIRD_PARTY_KINDS = (
    ("torch.nn.", "torch.nn.Module"),
    ("torch.optim.", "torch.optim.Optimizer"),
    ("torch.optim.", "torch.optim.lr_scheduler.LRScheduler"),
    ("lightning.pytorch.", "lightning.pytorch.Trainer"),
    ("lightning.pytorch.loggers.", "lightning.pytorch.loggers.Logger"),
    ("lightning.pytorch.strategies.", "lightning.pytorch.strategies.Strategy"),
)
HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_"}
#: where a run config builds something, and what it must build there (a base class; None: any
#: allowed constructor). A ``_target_`` anywhere else (say, inside the modality's options) is
#: refused: nothing a bundle names is built in a place the core did not plan for.
ROLES: dict[str, str | None] = {
    "modality": "diffusionkit.modality.Modality",
    "data.dataset": "torch.utils.data.Dataset",
    "data.dataset.modality": "diffusionkit.modality.Modality",  # a dataset's ${modality}, resolved
    "cond": "diffusionkit.modality.ConcatCondition",
    "net": "torch.nn.Module",
    "autoencoder.net": "torch.nn.Module",
    "first_stage.net": "torch.nn.Module",
    "first_stage.discriminator": "torch.nn.Module",
    "diffusion.schedule": "diffusionkit.diffusion.schedules.NoiseSchedule",
    "diffusion.noise": "diffusionkit.diffusion.noise.GaussianNoise",
    "optim.optimizer": "torch.optim.Optimizer",
    "optim.lr_scheduler": "torch.optim.lr_scheduler.LRScheduler",
    "trainer": "lightning.pytorch.Trainer",
    "trainer.strategy": None,
    "logger": "lightning.pytorch.loggers.Logger",
    "text_encoder": "diffusionkit.text_encoders.TextEncoder",
}
#: places named by a pattern: ``conditioners.<name>`` builds a model's own conditioner
ROLE_PATTERNS: dict[str, str] = {"conditioners.*": "diffusionkit.nets.conditioners.Conditioner"}
CONVERT_MODES = {"none", "partial", "object", "all"}
#: the places only training builds: checked by name alone when a config is loaded to sample.
TRAINING_ONLY = ("trainer", "trainer.strategy", "logger")


class TargetRefused(UsageError):
    """A config names something it may not build (raised before anything is built)."""


def _conf_dirs() -> list[Path]:
    from diffusionkit.config import core_conf_dir

    return [Path(str(core_conf_dir())), *(p.conf_dir for p in discover() if p.conf_dir is not None)]


def _targets_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            yield node["_target_"]
        for value in node.values():
            yield from _targets_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _targets_in(value)


@functools.cache
def registered_targets() -> frozenset[str]:
    """Every ``_target_`` the installed config trees name, plus each plugin's Modality class.
    The files are read as plain YAML (libyaml's parser where present: a command's start reads
    them all), which gives a ``_target_`` the same string OmegaConf does."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    names = {p.target.replace(":", ".") for p in discover()}
    for folder in _conf_dirs():
        for path in folder.rglob("*.yaml"):
            try:
                names.update(_targets_in(yaml.load(path.read_text(encoding="utf-8"), Loader=loader)))
            except Exception:  # an unreadable config is reported where it is composed, not here
                continue
    return frozenset(names)


def forget_installed() -> None:
    """Forget what was read about the installed plugins and their configs (a plugin registered
    in this process after the first check is then seen)."""
    registered_targets.cache_clear()
    _registered_objects.cache_clear()
    forget_owned_modules()


@functools.cache
def _registered_objects(root: str) -> tuple[Any, ...]:
    """The registered targets under the top-level package ``root``, resolved (installed strings)."""
    from hydra._internal.utils import _locate

    found = []
    for name in sorted(registered_targets()):
        if name.split(".")[0] == root:
            try:
                found.append(_locate(name))
            except Exception:  # a registered target that does not import cannot match anything
                continue
    return tuple(found)


def resolve_target(name: str) -> Any:
    """The object ``name`` names, walked one attribute at a time without leaving the package the
    name starts in; TargetRefused (naming the step) for a chain through another package."""
    parts = name.split(".")
    root = parts[0]
    if not all(parts) or root not in (*owned_modules(), *THIRD_PARTY_ROOTS):
        raise TargetRefused(f"'{name}' is outside diffusionkit, its installed plugins, torch and Lightning")
    try:
        obj: Any = importlib.import_module(root)
    except ImportError as err:
        raise TargetRefused(f"'{name}' cannot be imported ({err})") from None
    for depth, part in enumerate(parts[1:], start=2):
        walked = ".".join(parts[:depth])
        if part.startswith("__"):
            raise TargetRefused(f"'{name}' reaches into a private attribute ('{part}')")
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif isinstance(obj, ModuleType):
            try:
                obj = importlib.import_module(walked)
            except ImportError:
                raise TargetRefused(f"'{name}' does not exist (no '{walked}')") from None
        else:
            raise TargetRefused(f"'{name}' does not exist (no '{walked}')")
        if isinstance(obj, ModuleType) and obj.__name__ != walked:
            raise TargetRefused(f"'{name}' passes through module '{obj.__name__}' as '{walked}'")
    return obj


def _canonical(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _third_party_kind(obj: Any) -> bool:
    """A torch layer/optimizer/scheduler class or a Lightning trainer/logger/strategy class."""
    if not inspect.isclass(obj):
        return False
    from hydra._internal.utils import _locate

    for prefix, base in THIRD_PARTY_KINDS:
        if obj.__module__.startswith(prefix) and issubclass(obj, _locate(base)):
            return True
    return False


def check_target(name: str, role: str | None = None) -> None:
    """Allow ``name`` only if it resolves to a registered constructor or a trusted torch or
    Lightning class (see the module's docstring), and, given a ``role`` (a base class path), to a
    subclass of it; TargetRefused otherwise."""
    obj = resolve_target(name) if role is not None or name not in registered_targets() else None
    if role is not None:
        _check_role(name, obj, role)
    if name in registered_targets():
        return  # the very string an installed config names resolves to the very object it does
    root = getattr(obj, "__module__", "") or ""
    if any(obj is known for known in _registered_objects(root.split(".")[0])) or _third_party_kind(obj):
        return
    raise TargetRefused(f"'{name}' is {_canonical(obj)}, which no installed config registers and which is no "
                        f"torch layer, optimizer or scheduler class")


def _check_role(name: str, obj: Any, role: str) -> None:
    from hydra._internal.utils import _locate

    if not (inspect.isclass(obj) and issubclass(obj, _locate(role))):
        raise TargetRefused(f"'{name}' is not a {role.rsplit('.', 1)[-1]}, which is what is built there")


def _check_hydra_key(key: str, value: Any, where: str) -> None:
    if key == "_target_" and not isinstance(value, str):
        raise TargetRefused(f"_target_ at {where} is not a name")
    if key in ("_partial_", "_recursive_") and not isinstance(value, bool):
        raise TargetRefused(f"{key} at {where} must be true or false, not {value!r}")
    if key == "_convert_" and str(value).lower() not in CONVERT_MODES:
        raise TargetRefused(f"_convert_ at {where} must be one of {sorted(CONVERT_MODES)}, not {value!r}")
    if key not in HYDRA_KEYS:
        raise TargetRefused(f"{key} at {where} is not allowed (a bundle passes options by name only)")


def _walk(node: Any, where: str, visit: Callable[[str, Any, str], None]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            visit(str(key), value, where)
            _walk(value, f"{where}.{key}" if where else str(key), visit)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _walk(value, f"{where}[{index}]", visit)


def _check_unbuilt(name: str) -> None:
    """A target at a place the loader never builds: one of the strings an installed config names."""
    if name not in registered_targets():
        raise TargetRefused(f"'{name}' is not a target any installed config names")


def _visit(key: str, value: Any, where: str, for_training: bool = True) -> None:
    place = where or "the top level"
    if "${" in key or (isinstance(value, str) and "${" in value):
        raise TargetRefused(f"'{key}' at {place} holds an interpolation ({value!r}); a bundle's config is stored "
                            f"resolved")
    if key.startswith("_") and key.endswith("_") and len(key) > 2:
        _check_hydra_key(key, value, place)
        if key == "_target_":
            role = role_at(where)
            if role is False:
                raise TargetRefused(f"_target_ at {place}: nothing is built there (a bundle may build only at "
                                    f"{', '.join([*ROLES, *ROLE_PATTERNS])})")
            try:
                if for_training or where not in TRAINING_ONLY:
                    check_target(value, role)
                else:
                    _check_unbuilt(value)
            except TargetRefused as err:
                raise TargetRefused(f"_target_ at {place}: {err}") from None


def role_at(where: str) -> str | None | bool:
    """What must be built at a config path (a base class path, or None: any allowed
    constructor), or False where nothing may be built."""
    if where in ROLES:
        return ROLES[where]
    head, _, name = where.rpartition(".")
    pattern = f"{head}.*"
    return ROLE_PATTERNS[pattern] if pattern in ROLE_PATTERNS and name else False


def _check_built_places(config: Any) -> None:
    """Where a model part is built (:data:`ROLES` outside :data:`TRAINING_ONLY`, whose Lightning
    options may be plain names), a value must be a mapping (or empty): ``modality: 5`` builds nothing."""
    for where, role in ROLES.items():
        if where in TRAINING_ONLY or role is None:
            continue
        node: Any = config
        for key in where.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None and not isinstance(node, dict):
            raise TargetRefused(f"{where} holds {node!r}, where a {role.rsplit('.', 1)[-1]} is built from a mapping "
                                f"with a _target_")


def check_config(config: Any, source: str, for_training: bool = True) -> None:
    """Refuse, in one line naming ``source`` and the offending entry, a config (plain containers,
    unresolved) that names anything it may not build; nothing is instantiated before this.
    Not ``for_training``: the places only training builds are checked by name (see the module)."""
    try:
        _check_built_places(config)
        _walk(config, "", functools.partial(_visit, for_training=for_training))
    except TargetRefused as err:
        raise TargetRefused(f"{source}: refusing to load it: {err}; a bundle is data and may build only the "
                            f"classes diffusionkit and its installed plugins register") from None
