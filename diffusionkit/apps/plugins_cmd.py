"""``diffusionkit plugins list``: the installed plugins, their versions and config options."""

from __future__ import annotations

from diffusionkit.config import core_options
from diffusionkit.errors import UsageError
from diffusionkit.plugins import discover, import_error, option_clashes


def plugin_table() -> list[str]:
    """One line per plugin (name, version, modality class, options), then any problems."""
    plugins = discover()
    lines = [f"{'plugin':<10} {'version':<9} {'modality':<45} config options"]
    for plugin in plugins:
        error = import_error(plugin)
        options = "; ".join(f"{g}: {', '.join(v)}" for g, v in sorted(plugin.options.items())) or "-"
        status = f"BROKEN ({error})" if error else plugin.target
        lines.append(f"{plugin.name:<10} {plugin.version:<9} {status:<45} {options}")
    if not plugins:
        lines.append("(no plugins installed: pip install a diffusionkit plugin, e.g. plugins/diffusionkit-image)")
    lines += [f"warning: {clash}" for clash in option_clashes(core_options(), plugins)]
    return lines


def main(args: list[str]) -> int:
    if args not in ([], ["list"]):
        raise UsageError("usage: diffusionkit plugins list")
    print("\n".join(plugin_table()))
    return 0
