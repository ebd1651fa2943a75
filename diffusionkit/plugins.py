"""Plugin discovery: entry points of group ``diffusionkit.plugins`` and their config trees.

Discovery never imports a plugin's code: the config folder is found from the package's
location on disk, so one broken plugin cannot stop the others from composing. Importing a
plugin's Modality class happens only when a run builds it (or ``plugins list`` checks it).
The contract version a plugin targets is read from its ``__init__.py`` without running it; a
plugin written for another version is left out of every run and reported with the fix.

``DIFFUSIONKIT_PLUGINS=name,name`` (an environment variable) makes only the plugins of those
entry-point names visible, as if the others were not installed; unset or empty, all are. The
core's test session runs with ``DIFFUSIONKIT_PLUGINS=toy`` to prove it needs no built-in plugin.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from pathlib import Path

from diffusionkit.media import FileWidgets
from diffusionkit.modality import CONTRACT_VERSION

ENTRY_POINT_GROUP = "diffusionkit.plugins"
#: config groups that plugins share with the core and with each other.
SHARED_GROUPS = ("modality", "data", "cond", "net", "experiment")
#: the module-level name a plugin's ``__init__.py`` sets to the contract version it targets.
CONTRACT_ATTRIBUTE = "DIFFUSIONKIT_CONTRACT"
#: the environment variable that restricts discovery to the plugins it names (comma-separated).
VISIBLE_PLUGINS_ENV = "DIFFUSIONKIT_PLUGINS"


def entry_points(group: str) -> list[EntryPoint]:
    """The installed entry points of ``group``, only those named in ``DIFFUSIONKIT_PLUGINS`` when set."""
    visible = {name.strip() for name in os.environ.get(VISIBLE_PLUGINS_ENV, "").split(",") if name.strip()}
    found = importlib.metadata.entry_points(group=group)
    return [ep for ep in found if not visible or ep.name in visible]


@dataclass(frozen=True)
class PluginInfo:
    """What is known about an installed plugin without importing it."""

    name: str
    target: str  # "package.module:Class"
    distribution: str
    version: str
    conf_dir: Path | None
    options: dict[str, list[str]] = field(default_factory=dict)
    #: the contract version the plugin targets (an int), or a one-line reason it cannot be read.
    contract: int | str = 1

    @property
    def package(self) -> str:
        return self.target.split(":")[0].split(".")[0]


def _package_folder(package: str, name: str) -> Path | None:
    """The folder ``name`` inside an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / name
        if candidate.is_dir():
            return candidate
    return None


def _conf_dir(package: str) -> Path | None:
    return _package_folder(package, "conf")


def named_bundles() -> dict[str, Path]:
    """Ready-made models that plugins ship in their ``bundles/`` folder, by file stem
    (``ckpt=drums_starter`` finds ``<plugin>/bundles/drums_starter.safetensors``)."""
    found: dict[str, Path] = {}
    for plugin in discover():
        folder = _package_folder(plugin.package, "bundles")
        for path in sorted(folder.glob("*.safetensors")) if folder else []:
            found.setdefault(path.stem, path)
    return found


def shipped_examples(extensions: tuple[str, ...] = ()) -> list[Path]:
    """Example media files plugins ship in their ``examples/`` folder (``kick.wav``...), those
    with one of ``extensions`` (lower case, with dot) when given, sorted by plugin and name."""
    found: list[Path] = []
    for plugin in discover():
        folder = _package_folder(plugin.package, "examples")
        found += [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
                  and (not extensions or p.suffix.lower() in extensions)] if folder else []
    return found


def declared_file_widgets() -> list[FileWidgets]:
    """The ``file_widgets`` each importable plugin's Modality declares, the first of each name,
    in plugin order (front ends build their widgets for these)."""
    found: dict[str, FileWidgets] = {}
    for plugin in discover():
        module_name, _, attr = plugin.target.partition(":")
        try:
            widgets = getattr(getattr(importlib.import_module(module_name), attr), "file_widgets", None)
        except Exception:  # a broken plugin must not break the others
            continue
        if isinstance(widgets, FileWidgets):
            found.setdefault(widgets.name, widgets)
    return list(found.values())


def config_options(conf_dir: Path | None) -> dict[str, list[str]]:
    """The options a config tree offers per group, e.g. ``{"data": ["digits", "shapes"]}``."""
    if conf_dir is None:
        return {}
    options: dict[str, list[str]] = {}
    for path in sorted(conf_dir.rglob("*.yaml")):
        group = path.parent.relative_to(conf_dir).as_posix()
        if group != ".":
            options.setdefault(group, []).append(path.stem)
    return options


def declared_contract(package: str) -> int | str:
    """The ``DIFFUSIONKIT_CONTRACT = <int>`` of a package's ``__init__.py``, read without
    running it: 1 when it states none (or has no such file: a missing package is reported when
    it is imported), a one-line reason when the statement cannot be read."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return 1
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError) as err:
        return f"cannot read {spec.origin}: {type(err).__name__}"
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == CONTRACT_ATTRIBUTE
                                                for t in node.targets):
            value = node.value.value if isinstance(node.value, ast.Constant) else None
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            return f"{CONTRACT_ATTRIBUTE} in {spec.origin} must be a whole number such as {CONTRACT_VERSION}"
    return 1


def contract_problem(plugin: PluginInfo) -> str | None:
    """Why a plugin cannot be used with this core's contract, with the fix; None if it can."""
    declared = plugin.contract
    if isinstance(declared, str):
        return f"{declared}; fix: set {CONTRACT_ATTRIBUTE} = {CONTRACT_VERSION} in {plugin.package}/__init__.py"
    if declared > CONTRACT_VERSION:
        return (f"written for plugin contract {declared}, this diffusionkit has contract {CONTRACT_VERSION}; "
                f"fix: pip install --upgrade diffusionkit")
    if declared < CONTRACT_VERSION:
        return (f"written for plugin contract {declared}, this diffusionkit has contract {CONTRACT_VERSION}; "
                f"fix: pip install --upgrade {plugin.distribution}, or port it (docs/plugins.md, 'Contract versions')")
    return None


def discover(include_incompatible: bool = False) -> list[PluginInfo]:
    """Every installed plugin that targets this core's contract, sorted by name; nothing is
    imported. ``include_incompatible`` adds the others (see :func:`contract_problem`)."""
    plugins = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        package = ep.value.split(":")[0].split(".")[0]
        conf_dir = _conf_dir(package)
        plugins.append(
            PluginInfo(
                name=ep.name,
                target=ep.value,
                distribution=dist.name if dist else ep.name,
                version=dist.version if dist else "?",
                conf_dir=conf_dir,
                options=config_options(conf_dir),
                contract=declared_contract(package),
            )
        )
    usable = [p for p in plugins if include_incompatible or contract_problem(p) is None]
    return sorted(usable, key=lambda p: p.name)


def import_error(plugin: PluginInfo) -> str | None:
    """Import the plugin's Modality class; return a one-line reason if that fails."""
    module_name, _, attr = plugin.target.partition(":")
    try:
        module = importlib.import_module(module_name)
        if attr:
            getattr(module, attr)
    except Exception as exc:  # a broken plugin must not break the others
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return None


def option_clashes(core_options: dict[str, list[str]], plugins: list[PluginInfo]) -> list[str]:
    """Options offered by two config trees in one group (the first on the search path wins).

    Returns one message per clash, naming the option and both owners.
    """
    owner: dict[tuple[str, str], str] = {
        (group, option): "diffusionkit" for group, names in core_options.items() for option in names
    }
    clashes = []
    for plugin in plugins:
        for group, names in plugin.options.items():
            for option in names:
                key = (group, option)
                if key in owner:
                    clashes.append(
                        f"config '{group}/{option}' is offered by both {owner[key]} and "
                        f"{plugin.distribution}; {owner[key]} wins, rename one of them"
                    )
                else:
                    owner[key] = plugin.distribution
    return clashes


def owned_modules() -> tuple[str, ...]:
    """Top-level packages of the core and the visible installed plugins (see
    :mod:`diffusionkit.trusted_targets`), read once per process and ``DIFFUSIONKIT_PLUGINS``
    value (:func:`forget_owned_modules` forgets them)."""
    return _owned_modules(os.environ.get(VISIBLE_PLUGINS_ENV, ""))


@functools.cache
def _owned_modules(visible: str) -> tuple[str, ...]:
    return ("diffusionkit", *(p.package for p in discover()))


def forget_owned_modules() -> None:
    _owned_modules.cache_clear()

