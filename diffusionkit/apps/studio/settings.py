"""The page's settings as the CLI's config of a command, checked by the CLI's option table, so
the page refuses what the command refuses with the same one line."""

from __future__ import annotations

import threading
from pathlib import PurePath
from typing import Any

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from diffusionkit.apps.common import require_values
from diffusionkit.config import compose_config
from diffusionkit.errors import UsageError
from diffusionkit.options import check_options


def parse_media_options(text: str | None) -> dict[str, Any]:
    """``output_rate=44100 midi=true`` (the CLI's media options as typed on the page) as a mapping
    of plain values, each read as the command line reads it (Hydra's grammar: ``1e12`` is a
    number); one line for a word that is not ``key=value``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    options: dict[str, Any] = {}
    for word in (text or "").split():
        key, sep, value = word.partition("=")
        key = key.removeprefix("media.")
        if not sep or not key.isidentifier():
            raise UsageError(f"cannot read file option '{word}': write key=value, e.g. output_rate=44100")
        try:
            override = parser.parse_override(f"{key}={value}") if value else None
        except HydraException:
            options[key] = value
            continue
        if override is not None and override.is_sweep_override():
            quote = f" (quote a value that holds a comma: {key}='{value}')" if "," in value else ""
            raise UsageError(f"file option '{word}' is a sweep of several values; the studio runs one at a time"
                             + quote)
        options[key] = override.value() if override is not None else None
    return options


def literal(key: str, value: Any) -> Any:
    """``value`` (a page's text, a number, a mapping of them) unchanged; UsageError (one line) if
    a text holds ``${``: the config would resolve it (``${oc.env:HOME}`` reads the server's
    environment), and a page's text is taken as written."""
    if isinstance(value, dict):
        return {k: literal(k if key in ("inputs", "media") else f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [literal(key, v) for v in value]
    if isinstance(value, (str, PurePath)) and "${" in str(value):
        what = "its file name" if key in ("input", "a", "b") else "it"
        raise UsageError(f"{key}: the studio takes text as written and does not resolve '${{...}}'; "
                         f"remove '${{' from {what} ({str(value)!r})")
    return value


def has_key(cfg: DictConfig, dotted: str) -> bool:
    """Whether ``cfg`` has the (dotted) key, whatever its value (``???`` included)."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, DictConfig) or part not in node.keys():
            return False
        node = node._get_node(part)
    return True


class CommandConfigs:
    """Configs of the sampling commands, composed with Hydra once per (command, sampler) and
    copied per request (composing takes a few hundred milliseconds; copying, microseconds)."""

    def __init__(self) -> None:
        self._base: dict[tuple[str, str | None], DictConfig] = {}
        self._lock = threading.Lock()

    def base(self, command: str, sampler: str | None) -> DictConfig:
        key = (command, sampler or None)
        with self._lock:
            if key not in self._base:
                self._base[key] = compose_config(command, [f"sampler={sampler}"] if sampler else [])
            return self._base[key].copy()

    def make(self, command: str, values: dict[str, Any]) -> DictConfig:
        """The config of ``diffusionkit <command>`` with ``values`` (dotted keys; ``sampler`` picks
        the config group), checked as the command line's would be (UsageError, one line)."""
        values = dict(values)
        cfg = self.base(command, values.pop("sampler", None))
        for key, value in values.items():
            if not has_key(cfg, key):
                raise UsageError(f"{command} takes no option '{key}'")
            OmegaConf.update(cfg, key, literal(key, value), merge=False)
        check_options(command, cfg, [])
        require_values(cfg)
        return cfg
