"""``diffusionkit plugins list | new NAME [dir=PATH] | check NAME [train=true]``: the installed
plugins, a new plugin package from the scaffold, and the plugin contract checked in words."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from diffusionkit.config import core_options
from diffusionkit.errors import UsageError
from diffusionkit.plugins import contract_problem, discover, import_error, option_clashes

USAGE = "usage: diffusionkit plugins list | new NAME [dir=PATH] | check NAME [train=true]"


def plugin_table() -> list[str]:
    """One line per plugin (name, version, modality class, options), then any problems."""
    plugins = discover(include_incompatible=True)
    lines = [f"{'plugin':<10} {'version':<9} {'modality':<45} config options"]
    problems = []
    for plugin in plugins:
        incompatible = contract_problem(plugin)
        error = None if incompatible else import_error(plugin)
        options = "; ".join(f"{g}: {', '.join(v)}" for g, v in sorted(plugin.options.items())) or "-"
        status = "INCOMPATIBLE" if incompatible else f"BROKEN ({error})" if error else plugin.target
        lines.append(f"{plugin.name:<10} {plugin.version:<9} {status:<45} {options}")
        if incompatible:
            problems.append(f"problem: plugin '{plugin.name}' ({plugin.distribution}) is left out: {incompatible}")
        elif error:
            problems.append(f"problem: plugin '{plugin.name}' ({plugin.distribution}) cannot be imported: {error}; "
                            f"fix: install what it needs, or reinstall it (diffusionkit plugins check {plugin.name})")
    if not plugins:
        lines.append("(no plugins installed: pip install a diffusionkit plugin, e.g. plugins/diffusionkit-image)")
    usable = [p for p in plugins if not contract_problem(p)]
    return lines + problems + [f"warning: {clash}" for clash in option_clashes(core_options(), usable)]


def _options(args: list[str], allowed: set[str]) -> dict[str, str]:
    """``key=value`` arguments after the plugin name; UsageError for anything else."""
    found = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in allowed:
            raise UsageError(f"unknown argument '{arg}'; {USAGE}")
        found[key] = value
    return found


def new(name: str, args: list[str]) -> int:
    """Write a plugin package and print the commands that take it to a generated sample."""
    from diffusionkit.scaffold import new_plugin

    root, written = new_plugin(name, _options(args, {"dir"}).get("dir"))
    print(f"wrote the plugin package {root} ({len(written)} files); next:")
    for command in (f"pip install -e {root}", f"diffusionkit plugins check {name}",
                    f"diffusionkit train modality={name} trainer.max_steps=20 out={name}_run",
                    f"diffusionkit generate ckpt={name}_run/model.safetensors n=8 out={name}_samples",
                    f"cd {root} && python -m pytest"):
        print(f"  {command}")
    print("The guide: docs/plugins.md in diffusionkit; the package's README lists what to change.")
    return 0


def check(name: str, args: list[str]) -> int:
    """Run the contract's checks against an installed plugin; 1 if any fails."""
    from diffusionkit.testing import PluginUnderTest, run_checks

    train = _options(args, {"train"}).get("train", "false").lower()
    if train not in ("true", "false"):
        raise UsageError(f"train must be true or false, got '{train}'")
    with tempfile.TemporaryDirectory(prefix="diffusionkit-check-") as workdir:
        subject = PluginUnderTest(name, Path(workdir))
        info = subject.info
        print(f"checking plugin '{name}' ({info.distribution} {info.version}, {info.target})")
        results = run_checks(subject, slow=train == "true")
    for result in results:
        print(f"  {'PASS' if result.passed else 'FAIL'}  {result.check}: {result.detail}")
    failures = sum(not r.passed for r in results)
    print(f"{len(results) - failures} passed, {failures} failed"
          + ("" if failures else f"; plugin '{name}' keeps the contract"))
    return 1 if failures else 0


def main(args: list[str]) -> int:
    if args in ([], ["list"]):
        print("\n".join(plugin_table()))
        return 0
    if len(args) >= 2 and args[0] in ("new", "check") and re.fullmatch(r"[^=]+", args[1]):
        return (new if args[0] == "new" else check)(args[1], args[2:])
    raise UsageError(USAGE)
