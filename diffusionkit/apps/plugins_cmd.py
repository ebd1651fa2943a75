"""``diffusionkit plugins list | new NAME [dir=PATH] | check NAME [train=true]`` (``--help``: its
usage): the installed plugins, a new plugin package from the scaffold, and the plugin contract
checked in words."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from diffusionkit.config import core_options
from diffusionkit.errors import UsageError
from diffusionkit.plugins import contract_problem, discover, import_error, option_clashes

if TYPE_CHECKING:
    from diffusionkit.testing import CheckResult

USAGE = "usage: diffusionkit plugins list | new NAME [dir=PATH] | check NAME [train=true]"
HELP_FLAGS = ("-h", "--help")
HELP = f"""{USAGE}

  list                      the installed plugins: version, modality class, config options, problems
  new NAME [dir=PATH]       write a complete plugin package to start from (default ./diffusionkit-NAME)
  check NAME [train=true]   check an installed plugin against the contract, in words; exit 1 if
                            any check fails (train=true adds a tiny training run and sampling)

The guide for plugin authors: docs/plugins.md."""


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
        lines.append("(no plugins installed: pip install a diffusionkit plugin, e.g. one of the plugins/ folder of its repository)")
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
    for status, checks, detail in finding_lines(results):
        print(f"  {status}  {', '.join(checks)}: {detail}")
    print(summary(name, results))
    return 1 if any(r.failed for r in results) else 0


def finding_lines(results: list[CheckResult]) -> list[tuple[str, list[str], str]]:
    """(status, checks, detail) per line: consecutive skips for one reason share a line."""
    lines: list[tuple[str, list[str], str]] = []
    for result in results:
        if lines and result.skipped and lines[-1][0] == "SKIP" and lines[-1][2] == result.detail:
            lines[-1][1].append(result.check)
        else:
            lines.append((result.status, [result.check], result.detail))
    return lines


def summary(name: str, results: list[CheckResult]) -> str:
    """``N passed, M failed[, K skipped]``, and whether the plugin keeps the contract."""
    counts = {status: sum(r.status == status for r in results) for status in ("PASS", "FAIL", "SKIP")}
    line = f"{counts['PASS']} passed, {counts['FAIL']} failed"
    line += f", {counts['SKIP']} skipped" if counts["SKIP"] else ""
    return line + ("" if counts["FAIL"] else f"; plugin '{name}' keeps the contract")


def main(args: list[str]) -> int:
    if args[:1] == ["help"] or any(arg in HELP_FLAGS for arg in args):
        print(HELP)
        return 0
    if args in ([], ["list"]):
        print("\n".join(plugin_table()))
        return 0
    if len(args) >= 2 and args[0] in ("new", "check") and re.fullmatch(r"[^=]+", args[1]):
        return (new if args[0] == "new" else check)(args[1], args[2:])
    raise UsageError(USAGE)
