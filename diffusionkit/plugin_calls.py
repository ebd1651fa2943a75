"""Calls into plugin code. An exception a plugin raises that is not already a one-line user error
(its media library's own error, a slip in the plugin) becomes one line naming the plugin, what it
was asked to do and the error; ``DIFFUSIONKIT_DEBUG=1`` still shows the traceback (it is chained)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from torch import Tensor

from diffusionkit.errors import USER_ERRORS
from diffusionkit.modality import MediaError, Modality
from diffusionkit.plugins import discover

MAX_DETAIL = 300  # characters of the plugin's own message kept in the line


def plugin_name(obj: object) -> str:
    """``the audio plugin (AudioModality)``: the installed plugin whose package defines ``obj``'s
    class, else the class alone (a modality defined outside any plugin, e.g. in a test)."""
    cls = type(obj)
    package = cls.__module__.split(".")[0]
    name = next((p.name for p in discover() if p.package == package), None)
    return f"the {name} plugin ({cls.__name__})" if name else cls.__name__


def error_detail(err: BaseException) -> str:
    """``TypeName: first line of the message`` (cut to :data:`MAX_DETAIL` characters)."""
    line = next((s.strip() for s in str(err).splitlines() if s.strip()), "")
    if len(line) > MAX_DETAIL:
        line = line[:MAX_DETAIL] + "..."
    return f"{type(err).__name__}: {line}" if line else type(err).__name__


@contextmanager
def plugin_call(obj: object, doing: str) -> Iterator[None]:
    """Run plugin code of ``obj``; an error that is not a user error becomes one MediaError line:
    ``<doing>: <plugin> failed: <error>``."""
    try:
        yield
    except USER_ERRORS:
        raise
    except Exception as err:
        raise MediaError(f"{doing}: {plugin_name(obj)} failed: {error_detail(err)}") from err


def read_media(modality: Modality, path: str | Path, option: str = "input") -> Tensor:
    """``modality.load(path)`` for the file the user gave as ``<option>=``, printing the
    modality's notes on how it read it (:func:`media_notes`) one line each."""
    with plugin_call(modality, f"cannot read {option}={path}"):
        item = modality.load(path)
    for note in media_notes(modality, path, option):
        print(f"note: {note}")
    return item


def media_notes(modality: Modality, path: str | Path, option: str = "input") -> list[str]:
    """The modality's notes on how it reads ``<option>=path`` (:meth:`Modality.read_notes`), each
    naming the option and the file."""
    with plugin_call(modality, f"cannot read {option}={path}"):
        return [f"{option}={path}: {note}" for note in modality.read_notes(path)]
