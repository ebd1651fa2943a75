"""Names that become file names: class names (from bundles, folder datasets, labels) and the
items a command writes into ``out=``.

Class names are checked where they enter (a bundle's metadata, a dataset's classes) and every
name is made a plain file stem again where it becomes a path, so that no name from elsewhere can
reach outside ``out=`` (``x/../../TRAV``) or onto a file already there.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from diffusionkit.errors import UsageError

#: the longest class name accepted (file systems allow 255 bytes per name, with room for suffixes).
MAX_CLASS_NAME = 100
#: the most classes a model may have.
MAX_CLASSES = 10_000
_UNSAFE = re.compile(r"[^\w.+\- ]")


def class_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a class name (None if it can): it must be a non-empty string of at
    most :data:`MAX_CLASS_NAME` characters, with no path separator, control character, or a name
    of its own such as ``..``."""
    if not isinstance(name, str) or not name.strip():
        return "is empty or not text"
    if len(name) > MAX_CLASS_NAME:
        return f"is longer than {MAX_CLASS_NAME} characters"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if name in (".", ".."):
        return "names a folder"
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        return "contains a control character"
    return None


def check_class_names(classes: Any, source: str) -> list[str]:
    """``classes`` as a list of unique, plain class names; UsageError (one line naming ``source``
    and the first bad name) otherwise."""
    if not isinstance(classes, list):
        raise UsageError(f"{source}: its classes are not a list of names")
    if len(classes) > MAX_CLASSES:
        raise UsageError(f"{source}: {len(classes):,} classes, more than the {MAX_CLASSES:,} a model may have")
    for name in classes:
        problem = class_name_problem(name)
        if problem:
            raise UsageError(f"{source}: class name {str(name)[:60]!r} {problem}; class names must be plain names "
                             f"such as 'kick' or 'open_hat'")
    seen: set[str] = set()
    duplicate = next((name for name in classes if name in seen or seen.add(name)), None)
    if duplicate is not None:
        raise UsageError(f"{source}: class name {duplicate!r} appears twice; class names must be unique")
    return classes


def dataset_classes(dataset: Any, source: str) -> list[str]:
    """The checked class names of a dataset (its ``classes``; none for an unlabelled one)."""
    return check_class_names(list(getattr(dataset, "classes", []) or []), source)


def file_stem(name: str) -> str:
    """``name`` as a plain file stem: anything but letters, digits, ``. + - _`` and spaces
    becomes ``_``, leading dots and spaces go, and it is at most 120 characters."""
    stem = _UNSAFE.sub("_", unicodedata.normalize("NFC", str(name))).lstrip(". ")[:120].rstrip(" ")
    return stem or "_"


def inside(folder: Path, name: str) -> Path:
    """``folder / file_stem(name)``, proved to lie directly inside ``folder``."""
    path = folder / file_stem(name)
    if path.resolve().parent != folder.resolve():
        raise UsageError(f"refusing to write '{path}': it is not inside '{folder}'")
    return path


def known_class_named(name: str, classes: list[str]) -> str | None:
    """The class of ``classes`` (a model's) a user's class name stands for: the same name, or one
    that differs only in case, spaces/hyphens for underscores or a plural s (``Kick``, ``Snares``,
    ``Closed Hat``); None for a class the model does not have."""
    def key(text: str) -> str:
        text = re.sub(r"[\s\-]+", "_", text.strip().lower())
        return text[:-1] if len(text) > 3 and text.endswith("s") and not text.endswith("ss") else text

    if name in classes:
        return name
    return next((known for known in classes if key(known) == key(name)), None)
