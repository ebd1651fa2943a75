"""Inputs read once: the model-space item of an uploaded file and the class the model hears in
it, cached by the file's content hash (with the model and its media options)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from torch import Tensor

#: entries kept (each a model-space item, a few hundred kilobytes for a 1 s clip).
CACHE_ENTRIES = 64


def content_hash(path: str | Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class InputCache:
    """A small least-recently-used map from (what, model hash, media options, file hash) to a
    value computed once; :attr:`hits` and :attr:`misses` count lookups (for tests and the page)."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._values: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(what: str, model_sha256: str, media: dict[str, Any], file_sha256: str) -> tuple:
        return what, model_sha256, json.dumps(media, sort_keys=True, default=str), file_sha256

    def get(self, key: tuple, compute: Callable[[], Tensor | None]) -> Tensor | None:
        """The cached value of ``key``, else ``compute()`` stored (an error is not cached)."""
        with self._lock:
            if key in self._values:
                self.hits += 1
                self._values.move_to_end(key)
                return self._values[key]
        value = compute()
        with self._lock:
            self.misses += 1
            self._values[key] = value
            while len(self._values) > self.entries:
                self._values.popitem(last=False)
        return value
