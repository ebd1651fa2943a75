"""``data=drumkits``: real recorded one-shots from drum kits, split by kit, preprocessed and reported.

The samples of every kit under ``root`` (Hydrogen kits, ``.h2drumkit`` archives, plain
``kit/<instrument>/`` folders: :mod:`.drumkits`) get a class from their instrument's name
(:mod:`.drum_names`); those of the chosen ``classes`` are onset-aligned, loudness normalised and
filtered (:mod:`.oneshots`). Kits named in ``test_kits`` are held out: ``split=train`` gives the
other kits, ``split=test`` those, ``split=all`` both, so one config gives disjoint sets. The
training kits must hold every class; ``split=all`` keeps those the kits hold (a user's own kit for
``finetune``: its base rehearses the rest) and warns of the others. Copies are found across every kit, and a training sample that copies a held-out one is dropped.

Items are ``{"x": Tensor[C, F, T], "label": int, "caption": str}``; ``kits``, ``instruments`` and
``files`` name each item's kit, instrument and file, ``sources`` is the kit (what ``evaluate`` holds
out), ``waves`` holds the clips, ``descriptors`` what was measured on them and ``captions`` the words
made of that (:mod:`.captions`: "long bright punchy snare", relative to the item's class), and
:meth:`report` tells what was kept and dropped, per class and per kit, and why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from diffusionkit.atomic import atomic_path
from diffusionkit.modality import DataUnavailable, MediaError

from .captions import CaptionOptions, captions_of, descriptors
from .drum_names import KeywordTable
from .drumkits import Kit, KitSample, find_kits_in
from .drumkits_report import Entry, format_report, per_class, per_kit
from .oneshots import OneShotOptions, Prepared, near_duplicates, prepare_oneshot
from .synth_drums import DRUM_CLASSES

log = logging.getLogger(__name__)

#: where Debian's ``hydrogen-drumkits`` package installs its kits.
DEBIAN_KITS = "/usr/share/hydrogen/data/drumkits"
#: the default held-out kits: an acoustic kit (wooden toms, piccolo snare), a drum machine's kit
#: with all 8 classes, and a synthesised hard-house kit: every class is in them (clap 3, rim 2 times).
#: No other kit shares their recordings (ElectricEmpireKit has HardElectro1's author, none of its sounds).
DEFAULT_TEST_KITS = ("ColomboAcousticDrumkit", "HardElectro1", "rumpf_kit_z01_h2")
SPLITS = ("train", "test", "all")
_CACHE_VERSION = 2  # 2: each clip's descriptors (captions) beside it


@dataclass(frozen=True)
class _Candidate:
    """A sample of a chosen class, in the order copies are resolved (held-out kits first)."""

    sample: KitSample
    label: str
    held_out: bool


def kit_roots(root: str | Path | Sequence[str | Path] | None) -> list[Path]:
    """``data.dataset.root`` as paths: one root, or each of a list (at least one)."""
    if root is None:
        raise ValueError("drumkits: data.dataset.root is not set; give a kit, a folder of kits or a list of them")
    roots = [root] if isinstance(root, (str, os.PathLike)) else list(root)
    if not roots:
        raise ValueError("drumkits: data.dataset.root is an empty list; give a kit, a folder of kits or a list of them")
    return [Path(str(path)).expanduser() for path in roots]


def _check_classes(classes: Sequence[str], table: KeywordTable) -> list[str]:
    classes = [str(name) for name in classes]
    twice = sorted({name for name in classes if classes.count(name) > 1})
    if twice:
        raise ValueError(f"drumkits: classes name {twice[0]!r} more than once; each class is one label, so list it once "
                         f"in data.dataset.classes")
    unknown = [name for name in classes if name not in table.classes]
    if not classes or unknown:
        raise ValueError(f"drumkits: classes {unknown or '[]'} are not classes of the keyword table (known: "
                         f"{', '.join(table.classes)}); give words for a new class with "
                         f"data.dataset.keywords={{name: [word, ...]}}")
    return classes


def _held_out(kits: list[Kit], test_kits: Sequence[str], split: str, root: str | Path) -> set[str]:
    """The names of the held-out kits (a test kit may be named by folder or by its drumkit.xml title).

    ``split=all`` takes every kit but still resolves copies held-out kits first (so that it is the
    union of ``train`` and ``test``); there, test kits that are absent are no error."""
    by_name = {**{k.title: k.name for k in kits}, **{k.name: k.name for k in kits}}
    absent = [name for name in test_kits if str(name) not in by_name]
    if split == "all":
        return {by_name[str(name)] for name in test_kits if str(name) in by_name}
    if absent:
        raise ValueError(f"drumkits: test_kits {absent} are not kits under '{root}' (kits: "
                         f"{', '.join(k.name for k in kits)}); set data.dataset.test_kits=[...] or "
                         f"data.dataset.split=all")
    if split == "test" and not test_kits:
        raise ValueError("drumkits: split=test needs held-out kits: data.dataset.test_kits=[kit, ...]")
    return {by_name[str(name)] for name in test_kits}


def _described(prepared: Prepared, sample_rate: int) -> Prepared:
    """``prepared`` with the descriptors of its clip (measured once: the cache keeps them)."""
    if prepared.wave is None or prepared.descriptors is not None:
        return prepared
    return replace(prepared, descriptors=descriptors(prepared.wave, sample_rate))


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/diffusionkit/drumkits`` (``~/.cache/...`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "diffusionkit" / "drumkits"


class _Cache:
    """Prepared clips (and their descriptors) per kit, keyed by the samples' identities (path, size,
    mtime) and every setting."""

    def __init__(self, folder: Path | None, settings: str) -> None:
        self.folder, self.settings, self.hits = folder, settings, 0

    def _path(self, kit: str, samples: list[KitSample]) -> Path:
        text = json.dumps([_CACHE_VERSION, self.settings, [s.identity for s in samples]])
        slug = re.sub(r"[^\w.-]+", "_", kit)[:60]
        return self.folder / f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:20]}.npz"

    def load(self, kit: str, samples: list[KitSample]) -> list[Prepared] | None:
        if self.folder is None or not samples or not (path := self._path(kit, samples)).is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                meta, waves = json.loads(str(stored["meta"])), stored["waves"]
            found = [Prepared(waves[m["wave"]] if m["wave"] >= 0 else None, m["reason"], m["detail"], m["onset"],
                              m["descriptors"]) for m in meta]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return None
        self.hits += 1
        return found

    def save(self, kit: str, samples: list[KitSample], prepared: list[Prepared]) -> None:
        if self.folder is None or not samples:
            return
        kept = [p.wave for p in prepared if p.wave is not None]
        order = iter(range(len(kept)))
        meta = [{"wave": next(order) if p.wave is not None else -1, "reason": p.reason, "detail": p.detail,
                 "onset": p.onset_seconds, "descriptors": p.descriptors} for p in prepared]
        waves = np.stack(kept) if kept else np.zeros((0,), np.float32)
        try:
            with atomic_path(self._path(kit, samples)) as tmp:
                with open(tmp, "wb") as out:
                    np.savez(out, waves=waves, meta=np.array(json.dumps(meta)))
        except OSError:
            pass  # a cache that cannot be written only costs time


class DrumKitsDataset(Dataset):
    """Real one-shots from drum kits, split by kit (see the module docstring).

    Args:
        modality: the audio modality (``sample_rate``, ``num_samples``, ``audio_channels``, ``encode_wave``).
        root: one kit (folder, ``.h2drumkit``, plain kit) or a folder of kits; or a list of them
            (``'data.dataset.root=[/usr/share/hydrogen/data/drumkits,"~/my_kits"]'``), whose kit names must differ.
        split: ``train`` (kits not in ``test_kits``), ``test`` (those) or ``all``.
        test_kits: held-out kit names (folder or archive name, or drumkit.xml title).
        classes: the classes kept, in label order (default: the synthetic ``drums`` classes).
        keywords: ``{class: [keyword, ...]}`` tried before the built-in table (:mod:`.drum_names`).
        preprocess: :class:`~.oneshots.OneShotOptions` fields.
        cache: keep prepared clips in ``cache_dir`` (default :func:`default_cache_dir`).
        captions: :class:`~.captions.CaptionOptions` fields (percentiles, absolute thresholds,
            ``with_kit``, ``seed``, ``keep``: word dropout, ``synonyms``: words swapped for
            others); None for the defaults.
    """

    def __init__(self, modality: Any, root: str | Path | Sequence[str | Path] = DEBIAN_KITS, split: str = "train",
                 test_kits: Sequence[str] = DEFAULT_TEST_KITS, classes: Sequence[str] = DRUM_CLASSES,
                 keywords: Mapping[str, Sequence[str] | str] | None = None,
                 preprocess: Mapping[str, Any] | None = None, cache: bool = True,
                 cache_dir: str | Path | None = None, captions: Mapping[str, Any] | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"drumkits: split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.roots, self.split = kit_roots(root), split
        self.root = self.roots[0] if len(self.roots) == 1 else ", ".join(map(str, self.roots))
        for path in self.roots:
            if not path.exists():
                raise DataUnavailable(f"drum kits '{path}' not found: install Debian's kits (apt-get install "
                                      "hydrogen-drumkits) or give yours with data.dataset.root=<kit, .h2drumkit or "
                                      "folder of kits, or a list of them>")
        self.table = KeywordTable(keywords)
        self.classes = _check_classes(classes, self.table)
        self.options = OneShotOptions(**dict(preprocess or {}))
        self.caption_options = CaptionOptions.of(captions)
        self.sample_rate, self.num_samples = int(modality.sample_rate), int(modality.num_samples)
        self.channels = int(getattr(modality, "audio_channels", 1))
        settings = f"{self.options.key()}|{self.sample_rate}|{self.num_samples}|{self.channels}"
        self._cache = _Cache(Path(cache_dir).expanduser() if cache_dir else default_cache_dir(), settings) \
            if cache else _Cache(None, settings)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="diffusionkit_drumkits_") as scratch:
            kits = find_kits_in(self.roots, Path(scratch))
            self.held_out = _held_out(kits, test_kits, split, self.root)
            outcomes = self._outcomes(kits)
        chosen = [k for k in kits if self._in_split(k.name)]
        self.kit_names = [k.name for k in chosen]
        self.missing = [m for k in chosen for m in k.missing]
        samples = [s for k in chosen for s in k.samples]
        self.entries = [self._entry(s, outcomes) for s in samples]
        self._collect([(s, *outcomes[s]) for s in samples if s in outcomes and outcomes[s][1].wave is not None],
                      modality)
        self.load_seconds = time.perf_counter() - started

    # ------------------------------------------------------------------ building
    def _in_split(self, kit: str) -> bool:
        return self.split == "all" or (kit in self.held_out) == (self.split == "test")

    def _candidates(self, kits: list[Kit]) -> list[_Candidate]:
        """Samples of the chosen classes in the kits this split needs, held-out kits first."""
        needed = [k for k in kits if self.split != "test" or k.name in self.held_out]
        ordered = sorted(needed, key=lambda k: k.name not in self.held_out)
        return [_Candidate(s, label, k.name in self.held_out) for k in ordered for s in k.samples
                if (label := self.table.classify(s.instrument)) in self.classes]

    def _prepare(self, candidates: list[_Candidate]) -> list[Prepared]:
        """Every candidate prepared (from the cache where it can), kit by kit."""
        prepared: list[Prepared] = []
        for kit in dict.fromkeys(c.sample.kit for c in candidates):
            samples = [c.sample for c in candidates if c.sample.kit == kit]
            found = self._cache.load(kit, samples)
            if found is None:
                found = [_described(prepare_oneshot(s.path, self.sample_rate, self.num_samples, self.channels,
                                                    self.options), self.sample_rate) for s in samples]
                self._cache.save(kit, samples, found)
            prepared += found
        return prepared

    def _outcomes(self, kits: list[Kit]) -> dict[KitSample, tuple[str, Prepared]]:
        """Each candidate sample's class and result, copies marked as ``duplicate``."""
        candidates = self._candidates(kits)
        prepared = self._prepare(candidates)
        usable = [i for i, p in enumerate(prepared) if p.wave is not None]
        copies = near_duplicates([prepared[i].wave for i in usable], self.sample_rate,
                                 self.options.duplicate_correlation)
        for position, (original, correlation) in copies.items():
            copy, first = candidates[usable[position]], candidates[usable[original]]
            note = " (held out)" if first.held_out and not copy.held_out else ""
            detail = f"copy of {first.sample.source} ('{first.sample.instrument}'){note}, r={correlation:.4f}"
            prepared[usable[position]] = Prepared(None, "duplicate", detail)
        return {c.sample: (c.label, p) for c, p in zip(candidates, prepared)}

    def _entry(self, sample: KitSample, outcomes: dict[KitSample, tuple[str, Prepared]]) -> Entry:
        label = self.table.classify(sample.instrument)
        if sample in outcomes:
            result = outcomes[sample][1]
            status = "kept" if result.wave is not None else str(result.reason)
            return Entry(sample.kit, sample.instrument, sample.source, label, status, result.detail)
        return Entry(sample.kit, sample.instrument, sample.source, label,
                     "unmapped" if label is None else "not_kept")

    def _collect(self, kept: list[tuple[KitSample, str, Prepared]], modality: Any) -> None:
        """The kept items of this split as tensors, in kit and sample order."""
        empty = [name for name in self.classes if name not in {label for _, label, _ in kept}]
        if not kept or (empty and self.split == "train"):
            raise MediaError(f"drum kits '{self.root}' (split={self.split}): no usable sample of class "
                             f"{', '.join(empty) or ', '.join(self.classes)} in kits "
                             f"{', '.join(self.kit_names) or '(none)'}; choose other data.dataset.classes or "
                             "test_kits, or add kits")
        if empty and self.split == "all":  # nothing is held out against them: the kits' own classes
            log.warning("drum kits '%s' hold no usable sample of class %s: left out (split=all keeps the classes "
                        "the kits hold)", self.root, ", ".join(empty))
            self.classes = [name for name in self.classes if name not in empty]
        waves = np.stack([p.wave for _, _, p in kept]).astype(np.float32)
        self.waves = waves[:, 0] if self.channels == 1 else waves
        self.labels = [self.classes.index(label) for _, label, _ in kept]
        self.kits = [s.kit for s, _, _ in kept]
        self.instruments = [s.instrument for s, _, _ in kept]
        self.files = [s.source for s, _, _ in kept]
        self.sources = self.kits  # items are held out by kit, never by file: layers of a drum share a kit
        self.descriptors = [p.descriptors for _, _, p in kept]
        self.caption_parts = captions_of(self.descriptors, [label for _, label, _ in kept], self.files,
                                         self.caption_options, self.kits)
        self.captions = [caption.text() for caption in self.caption_parts]
        self._caption_rng: tuple[int, np.random.Generator] | None = None
        self.x = torch.stack([modality.encode_wave(w) for w in waves])

    # ------------------------------------------------------------------ the dataset
    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        options = self.caption_options  # word dropout or synonyms: a caption drawn anew at each reading
        if not options.varies:
            return self.item_as_is(index)
        caption = self.caption_parts[index].text(options.keep, self._word_rng(), options.synonyms)
        return {"x": self.x[index], "label": self.labels[index], "caption": caption}

    def item_as_is(self, index: int) -> dict:
        """The item with its whole caption, as validation reads it (no word dropped or swapped)."""
        return {"x": self.x[index], "label": self.labels[index], "caption": self.captions[index]}

    def _word_rng(self) -> np.random.Generator:
        """The generator of word dropout and synonyms, one per process: torch seeds each data-loader worker
        differently (``torch.initial_seed``), so workers do not drop the same words."""
        seed = torch.initial_seed()
        if self._caption_rng is None or self._caption_rng[0] != seed:
            self._caption_rng = (seed, np.random.default_rng([self.caption_options.seed, seed % 2**32]))
        return self._caption_rng[1]

    # ------------------------------------------------------------------ reporting
    def summary(self) -> dict[str, Any]:
        """Counts by class and by kit, and the unmapped instrument names, as plain data."""
        return {"split": self.split, "kits": self.kit_names, "held_out": sorted(self.held_out),
                "per_class": per_class(self.entries, self.classes), "per_kit": per_kit(self.entries, self.classes),
                "unmapped": sorted({f"{e.kit}: {e.instrument}" for e in self.entries if e.status == "unmapped"}),
                "items": len(self), "load_seconds": self.load_seconds}

    def report(self) -> str:
        """What was kept and dropped (and why), per class and per kit; what stayed unmapped."""
        options = self.options
        held = "included" if self.split == "all" else "held out"
        header = [f"data=drumkits: {self.root} (split={self.split}: {len(self.kit_names)} kits; data.dataset.test_kits, "
                  f"{held}: {', '.join(sorted(self.held_out)) or 'none'})",
                  f"kits: {', '.join(self.kit_names)}",
                  f"clips: {self.sample_rate} Hz, {self.num_samples / self.sample_rate:.2f} s, {self.channels} "
                  f"channel(s), from the onset ({options.onset_db:g} dB), {options.normalize} normalised"
                  + (f" to {options.loudness_db:g} dBFS" if options.normalize == "loudness" else ""),
                  f"{len(self)} items in {len(self.classes)} classes, read in {self.load_seconds:.1f} s"
                  + (f" ({self._cache.hits} kits from the cache {self._cache.folder})" if self._cache.hits else "")]
        return format_report(header, self.entries, self.classes, self.missing)
