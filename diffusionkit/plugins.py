"""Plugin discovery: entry points of group ``diffusionkit.plugins`` and their config trees.

Discovery never imports a plugin's code: the config folder is found from the package's
location on disk, so one broken plugin cannot stop the others from composing. Importing a
plugin's Modality class happens only when a run builds it (or ``plugins list`` checks it).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

ENTRY_POINT_GROUP = "diffusionkit.plugins"
#: config groups that plugins share with the core and with each other.
SHARED_GROUPS = ("modality", "data", "cond", "net", "experiment")


@dataclass(frozen=True)
class PluginInfo:
    """What is known about an installed plugin without importing it."""

    name: str
    target: str  # "package.module:Class"
    distribution: str
    version: str
    conf_dir: Path | None
    options: dict[str, list[str]] = field(default_factory=dict)

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


def discover() -> list[PluginInfo]:
    """Every installed plugin, sorted by name; nothing is imported."""
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
            )
        )
    return sorted(plugins, key=lambda p: p.name)


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
    """Top-level modules whose classes a bundle may name in ``_target_`` (core + plugins)."""
    return ("diffusionkit", *(p.package for p in discover()))

