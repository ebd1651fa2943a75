"""Composing a command's config with Hydra (core + plugin config trees), and turning Hydra's errors into one line."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from diffusionkit.errors import UsageError
from diffusionkit.plugins import config_options, contract_problem, discover

CORE_CONF_MODULE = "diffusionkit.conf"


def core_conf_dir():
    return files(CORE_CONF_MODULE)


def core_options() -> dict[str, list[str]]:
    """The core's own options per config group."""
    return config_options(Path(str(core_conf_dir())))


def available_options() -> dict[str, list[str]]:
    """Every option per config group: the core's and every installed plugin's."""
    options = core_options()
    for plugin in discover():
        for group, names in plugin.options.items():
            options.setdefault(group, []).extend(n for n in names if n not in options.get(group, []))
    return options


def data_made_for_another_modality(cfg: DictConfig, overrides: list[str]) -> str | None:
    """Why ``data=NAME`` cannot go with the chosen modality, in one line, where a plugin that brings
    modalities brings that data and the modality built is none of that plugin's (a data-only
    plugin, or the core's ``folder``, go with any modality); None otherwise."""
    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("data=")]
    target = str(OmegaConf.select(cfg, "modality._target_", default="") or "")
    if not chosen or not target:
        return None
    plugins = discover()
    owner = next((p for p in plugins if chosen[-1] in p.options.get("data", [])), None)
    if owner is None or not owner.options.get("modality") or target.split(".")[0] == owner.package:
        return None
    theirs = next((p for p in plugins if target.split(".")[0] == p.package), None)
    choices = [*(theirs.options.get("data", []) if theirs else []), *core_options().get("data", [])]
    return (f"data={chosen[-1]} is the {owner.name} plugin's, made for modality={'|'.join(owner.options['modality'])}, "
            f"not for this modality ({target.rsplit('.', 1)[-1]}); choose that modality, or data= one made for "
            f"this one: {', '.join(choices)}")


def _config_keys(name: str) -> set[str]:
    """Top-level keys of a core config (``name`` relative to conf/, no suffix): its own values,
    its config groups, and the keys of configs it includes at its root (``shared/x@_here_``)."""
    conf = OmegaConf.create(core_conf_dir().joinpath(f"{name}.yaml").read_text())
    keys = {k for k in conf.keys() if k != "defaults"}
    for entry in conf.get("defaults", []):
        if isinstance(entry, (dict, DictConfig)):
            keys.update(str(k).removeprefix("optional ").lstrip("/").split("@")[0] for k in entry.keys())
        elif str(entry).endswith("@_here_"):
            keys.update(_config_keys(str(entry).removesuffix("@_here_")))
    return keys


def commands_taking(key: str) -> list[str]:
    """The commands whose own config has the top-level option ``key`` (``target`` -> convert),
    for a line that tells a user who gave it to another command where it belongs."""
    commands = sorted(path.name.removesuffix(".yaml") for path in core_conf_dir().iterdir()
                      if path.name.endswith(".yaml"))
    return [command for command in commands if key in _config_keys(command) and key not in ("inputs", "media")]


def route_inputs(command: str, overrides: list[str]) -> list[str]:
    """``sketch=FILE`` style overrides of unknown top-level keys become ``+inputs.sketch=FILE``
    for commands whose config has an ``inputs`` mapping (named conditioning files);
    ``media.<key>=V`` becomes ``++media.<key>=V`` (the ``media`` mapping starts empty)."""
    keys = _config_keys(command)
    if "inputs" not in keys:
        return overrides
    routed = []
    for override in overrides:
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", override, flags=re.S)
        if match and match.group(1) not in keys:
            routed.append(f"+inputs.{match.group(1)}={_prose_quoted(match.group(2))}")
        elif "media" in keys and re.match(r"media\.[A-Za-z_][A-Za-z0-9_]*=", override):
            routed.append(f"++{override}")
        else:
            routed.append(override)
    return routed


#: what ``stage=upsampler`` adds to a run unless it names a low_res conditioner itself: a cascade's
#: super-resolution condition (conf/conditioners/low_resolution.yaml)
UPSAMPLER_CONDITION = "+conditioners@conditioners.low_res=low_resolution"


def stage_parts(overrides: list[str]) -> list[str]:
    """``stage=upsampler`` with the condition it needs (:data:`UPSAMPLER_CONDITION`)."""
    if "stage=upsampler" not in overrides or any("conditioners.low_res=" in o for o in overrides):
        return overrides
    return [*overrides, UPSAMPLER_CONDITION]


def quoted_cascades(overrides: list[str]) -> list[str]:
    """``ckpt=BASE,UPSAMPLER`` (a cascade: :func:`diffusionkit.bundle.load_cascade`) quoted for
    Hydra, which would read the comma as a sweep."""
    return [f"ckpt='{o[5:]}'" if o.startswith("ckpt=") and "," in o and o[5:6] not in "'\"[" else o
            for o in overrides]


def _prose_quoted(value: str) -> str:
    """An input's value quoted for Hydra when it is prose (a prompt: "a red circle, top left",
    "don't ring"), which Hydra would read as several values or not at all; a sweep list
    (``0.1,0.5``), a number or a path is left as it is."""
    if value[:1] in "'\"[{" or not re.search(r",\s|'", value):
        return value
    return "'" + value.replace("'", "\\'") + "'"


def plugin_search_path() -> str:
    """The override that puts every installed plugin's ``conf/`` on Hydra's search path.

    Folders are found on disk without importing plugin code; passing them as the
    ``hydra.searchpath`` override works for regular and editable installs alike (Hydra's own
    ``hydra_plugins`` namespace scan does not see setuptools' editable finders).
    """
    paths = [f"file://{p.conf_dir}" for p in discover() if p.conf_dir is not None]
    quoted = ",".join("'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'" for path in paths)
    return f"hydra.searchpath=[{quoted}]"


def compose_config(command: str, overrides: list[str], hydra_node: bool = False) -> DictConfig:
    """The composed config of ``diffusionkit <command> <overrides>`` (with Hydra's own settings
    under ``hydra`` if ``hydra_node``); UsageError on bad input."""
    if not core_conf_dir().joinpath(f"{command}.yaml").is_file():
        raise UsageError(f"unknown command '{command}'")
    check_choices(overrides)
    check_default_choices(command, overrides)
    try:
        with initialize_config_module(CORE_CONF_MODULE, version_base="1.3"):
            return compose(config_name=command,
                           overrides=[plugin_search_path(), *route_inputs(command, quoted_cascades(stage_parts(overrides)))],
                           return_hydra_config=hydra_node)
    except (HydraException, OmegaConfBaseException) as err:
        check_default_choices(command, overrides, failure=err)
        raise UsageError(unquoted_value(overrides) or unparsable_value(overrides) or explain_hydra_error(err)) from None


def unquoted_value(overrides: list[str]) -> str | None:
    """The override whose value holds an unquoted ``=`` (Lightning's ``epoch=3-step=400.ckpt``
    names), which Hydra cannot parse, with the quoting that fixes it; None if there is none."""
    for override in overrides:
        key, _, value = override.partition("=")
        if "=" in value and value[:1] not in "'\"[{" and "," not in value:
            return (f"cannot read '{override}': quote a value that contains '=', e.g. "
                    f"{key}=\"'{value}'\" (or rename the file)")
    return None


def unparsable_value(overrides: list[str]) -> str | None:
    """The first override that Hydra's grammar cannot read (an unquoted value with ``~``, ``'``,
    ``(``, ``#`` or a non-ASCII letter, common in file names), with the quoting that fixes it;
    None if each one parses."""
    parser = OverridesParser.create()
    for override in overrides:
        key, sep, value = override.partition("=")
        try:
            parser.parse_overrides([override])
        except HydraException:
            if sep and value[:1] not in "'\"":
                quoted = value.replace("'", "\\'")
                return (f"cannot read '{override}': Hydra needs quotes around a value with such characters, "
                        f"e.g. {key}=\"'{quoted}'\" (or rename the file)")
    return None


def unknown_choice(group: str, choice: str, options: dict[str, list[str]]) -> str:
    for plugin in discover(include_incompatible=True):
        problem = contract_problem(plugin)
        if problem and choice in plugin.options.get(group, []):
            return f"{group} '{choice}' comes from plugin '{plugin.name}' ({plugin.distribution}), " \
                   f"which cannot be used: {problem}"
    known = ", ".join(sorted(options.get(group, []))) or "none installed"
    hint = " (install the plugin that provides it)" if group == "modality" else ""
    return f"unknown {group} '{choice}'; installed: {known}{hint}"


def choose_choice(group: str, options: dict[str, list[str]]) -> str:
    return f"choose a {group}: {group}=<one of: {', '.join(sorted(options.get(group, []))) or 'none installed'}>"


def interpolated_defaults(command: str) -> dict[str, str]:
    """Groups whose default names another group's choice, e.g. ``{"data": "modality"}`` for
    ``- data: ${modality}`` (a modality's own ``data/<modality>.yaml`` is its default data)."""
    conf = OmegaConf.create(core_conf_dir().joinpath(f"{command}.yaml").read_text())
    found = {}
    for entry in OmegaConf.to_container(conf, resolve=False).get("defaults", []):
        for group, choice in (entry.items() if isinstance(entry, dict) else []):
            source = re.fullmatch(r"\$\{([A-Za-z_]+)\}", str(choice))
            if source:
                found[str(group).removeprefix("optional ")] = source.group(1)
    return found


def check_default_choices(command: str, overrides: list[str], failure: Exception | None = None) -> None:
    """``modality=image`` without ``data=``: ask for a data option when the modality ships no
    default one (``data/image.yaml``), instead of Hydra's 'could not find data/image'. An
    ``experiment=`` may choose it (``override /data: ...``), so then only once Hydra's
    ``failure`` says it did not."""
    chosen = {m.group(1): m.group(2) for m in (re.fullmatch(r"[+~]*([A-Za-z_]\w*)(?:=(.*))?", o, flags=re.S)
                                               for o in overrides) if m}
    for group, source in interpolated_defaults(command).items():
        options = available_options()
        if group not in chosen and chosen.get(source) and chosen[source] not in options.get(group, []):
            if "experiment" not in chosen or f"'{group}/{chosen[source]}'" in str(failure or ""):
                raise UsageError(choose_choice(group, options))


def check_choices(overrides: list[str]) -> None:
    """Name an unknown group option (``modality=foo``) before Hydra reports anything else."""
    options = available_options()
    for override in overrides:
        group, sep, choice = override.partition("=")
        if sep and group in options and choice not in options[group] and choice != "null":
            raise UsageError(unknown_choice(group, choice, options))


def explain_hydra_error(err: Exception) -> str:
    """One line naming what is wrong with the overrides and how to fix it."""
    text = str(err)
    options = available_options()
    missing_choice = re.search(r"You must specify '([^']+)'", text)
    if missing_choice:
        return choose_choice(missing_choice.group(1), options)
    unknown = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if isinstance(err, MissingConfigException) and unknown:
        return unknown_choice(*unknown.groups(), options)
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)
    ambiguous = re.search(r"Ambiguous value for argument '(([^'=]+)=([^']*))'", text)
    if ambiguous:
        override, key, value = ambiguous.groups()
        return (f"'{override}' holds a comma, which Hydra reads as several values: quote it for one value, "
                f"e.g. {key}=\"'{value}'\"; write {key}=[...] for a list, or add -m to sweep over the values")
    if "To append to your config use" in text:
        key = re.search(r"Could not override '([^']+)'", text)
        name = key.group(1) if key else first
        return f"unknown option '{name}'; check its spelling, or add a new key with +{name}=..."
    return first


def missing_values(cfg: DictConfig) -> list[str]:
    """Keys still set to ``???`` (mandatory values the user has to give)."""
    return sorted(OmegaConf.missing_keys(cfg))
