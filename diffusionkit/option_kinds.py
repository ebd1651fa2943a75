"""The kinds of value a command option takes, each reading a value as the command uses it or
refusing it with the words for one line (:class:`Refused`); :mod:`diffusionkit.options` lists
which option of which command takes which kind."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from diffusionkit.devices import device_problem
from diffusionkit.out_folder import folder_problem


def shown(value: Any) -> str:
    """A value as the user would type it: ``null``, ``true``, ``abc``, ``[0.1, 2]``."""
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value)
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, list):
        return f"[{', '.join(shown(v) for v in value)}]"
    return str(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def bounds_text(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    """`` from 0 to 1``, `` of at least 1``, `` strictly between 0 and 1``... ('' without bounds)."""
    if low is not None and high is not None:
        if low_open and high_open:
            return f" strictly between {_number(low)} and {_number(high)}"
        if low_open or high_open:
            lower = f"above {_number(low)}" if low_open else f"at least {_number(low)}"
            upper = f"below {_number(high)}" if high_open else f"at most {_number(high)}"
            return f" {lower} and {upper}"
        return f" from {_number(low)} to {_number(high)}"
    if low is not None:
        return f" above {_number(low)}" if low_open else f" of at least {_number(low)}"
    if high is not None:
        return f" below {_number(high)}" if high_open else f" of at most {_number(high)}"
    return ""


class Refused(ValueError):
    """A value an option's kind does not accept; its text (if any) says why, after ``name=value:``."""


class Kind:
    """What an option takes: :meth:`read` returns the value as the command uses it, or raises Refused."""

    accepts = "a value"

    def read(self, value: Any) -> Any:
        raise NotImplementedError

    def explain(self, name: str, value: Any, hint: str, reason: str) -> str:
        """The one line for a refused value."""
        if reason:
            return f"{name}={shown(value)}: {reason}"
        return f"{name} must be {self.accepts}{f' ({hint})' if hint else ''}, got {name}={shown(value)}"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Whole(Kind):
    """A whole number within bounds (an integral float such as ``2.0`` reads as 2)."""

    low: int | None = None
    high: int | None = None

    @property
    def accepts(self) -> str:
        return "a whole number" + bounds_text(self.low, self.high)

    def read(self, value: Any) -> int:
        if not is_number(value) or not float(value).is_integer():
            raise Refused()
        number = int(value)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise Refused()
        return number


@dataclass(frozen=True)
class Number(Kind):
    """A finite number within bounds (each bound inclusive unless marked open)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    @property
    def accepts(self) -> str:
        return "a number" + bounds_text(self.low, self.high, self.low_open, self.high_open)

    def read(self, value: Any) -> float:
        if not is_number(value) or not math.isfinite(value):
            raise Refused()
        number = float(value)
        too_low = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        too_high = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if too_low or too_high:
            raise Refused()
        return number


@dataclass(frozen=True)
class Choice(Kind):
    """One of a few names (or ``true``/``false``)."""

    values: tuple[Any, ...]

    @property
    def accepts(self) -> str:
        return f"one of: {', '.join(shown(v) for v in self.values)}"

    def read(self, value: Any) -> Any:
        if not any(value == v and type(value) is type(v) for v in self.values):
            raise Refused()
        return value

    def explain(self, name: str, value: Any, hint: str, reason: str) -> str:
        return f"unknown {name} '{shown(value)}'; choose {name}= {self.accepts}"


@dataclass(frozen=True)
class NotText(Kind):
    """Anything but text: what an option whose default is a number (or a flag) takes at the least.
    A list or a number of another type may be right (``size=[32, 48]``; the option's own code
    judges it); a word such as ``abc`` or ``yes`` never is."""

    accepts: str = "a number"

    def read(self, value: Any) -> Any:
        if isinstance(value, str):
            raise Refused()
        return value


@dataclass(frozen=True)
class Settings(Kind):
    """A mapping of settings: what an option whose default is a group of settings takes
    (``prompts=true`` where the default is ``{n: 32, guidance: 3.0}`` is refused; its keys are set
    one by one, ``prompts.n=0``). With ``off``, null or false turns the group off (read as null:
    ``optim.lr_scheduler=null``)."""

    off: bool = True

    @property
    def accepts(self) -> str:
        return "a mapping of settings" + (" (or null: none)" if self.off else "")

    def read(self, value: Any) -> Any:
        if isinstance(value, (dict, DictConfig)):
            return value
        if self.off and (value is None or value is False):
            return None
        raise Refused()


@dataclass(frozen=True)
class Word(Kind):
    """A name: one word of text (a condition's name)."""

    accepts: str = "a name"

    def read(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or len(value.split()) != 1:
            raise Refused()
        return value


@dataclass(frozen=True)
class Each(Kind):
    """A list whose every element is of one kind."""

    element: Kind

    @property
    def accepts(self) -> str:
        return f"a list, each {self.element.accepts}"

    def read(self, value: Any) -> list:
        if not isinstance(value, (list, ListConfig)):
            raise Refused()
        return [self.element.read(v) for v in value]


def _path_text(value: Any) -> str:
    """A path option's value as text (``out=123`` is the folder ``123``); Refused if it is no path."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        raise Refused("expected a path")
    return str(value)


@dataclass(frozen=True)
class PathText(Kind):
    """A path or a name (``ckpt=`` also takes the name of a bundle a plugin ships)."""

    accepts = "a path"

    def read(self, value: Any) -> str:
        return _path_text(value)


@dataclass(frozen=True)
class Bundles(Kind):
    """A bundle's path or name, or a cascade of them: ``A,B`` or the list ``[A,B]`` (base first),
    stored as the comma-separated text the commands read."""

    accepts = "a path, or a list of paths (a cascade, base first)"

    def read(self, value: Any) -> str:
        if not isinstance(value, (list, ListConfig)):
            return _path_text(value)
        parts = [_path_text(v) for v in value]
        if not parts:
            raise Refused("the list is empty")
        if any("," in part for part in parts):
            raise Refused("a path in the list holds a comma; rename the file")
        return ",".join(parts)


@dataclass(frozen=True)
class ExistingFile(Kind):
    """A path to a file that exists (what is in it is the plugin's to judge)."""

    accepts = "a path to an existing file"

    def read(self, value: Any) -> str:
        text = os.path.expanduser(_path_text(value))
        if not Path(text).exists():
            raise Refused("no such file")
        return text


@dataclass(frozen=True)
class NewFolder(Kind):
    """A folder the command can create and write to (emptiness is checked by the command: a
    resumed training run continues in its own folder)."""

    accepts = "a folder"

    def read(self, value: Any) -> str:
        text = _path_text(value)
        problem = folder_problem(Path(text).expanduser())
        if problem:
            raise Refused(problem)
        return text


@dataclass(frozen=True)
class DeviceName(Kind):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether this machine has it is the command's to say)."""

    accepts = "a device name"

    def read(self, value: Any) -> str:
        if device_problem(value):
            raise Refused()
        return value

    def explain(self, name: str, value: Any, hint: str, reason: str) -> str:
        return device_problem(shown(value)) or super().explain(name, value, hint, reason)
