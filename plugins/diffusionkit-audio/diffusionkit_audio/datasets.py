"""Generated, offline audio datasets: drum one-shots and short melodic phrases.

Datasets yield ``{"x": Tensor[C, F, T], "label": int, "caption": str}`` (``x`` in the modality's
model space, from ``modality.encode_wave``) and expose ``classes``, the raw ``waves`` (float32
``[N, num_samples]``) and ``captions``. Item ``i`` has label ``i % len(classes)`` and its own
generator ``np.random.default_rng([seed, i])``, so it depends only on ``(seed, i)``, not on ``per_class``.

Captions name what the generator drew, in words (:mod:`.captions`), before the class name: a drum's
pitch, decay, drive and noise colour ("short driven dark kick": a draw in the low or high third of
its range gets a word, one in the middle none); a melody's tempo and register (relative to the
dataset's melodies) and its scale ("fast high pluck melody in dorian").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .captions import CaptionOptions, caption_text, group_thresholds, item_rng, spoken, words_for
from .synth_drums import DRUM_CLASSES, drum_with_parameters
from .synth_melodies import TIMBRES, Phrase, phrase_plan, render_phrase

#: a synthetic drum's named draw -> (word for the low third of its range, word for the high third)
DRUM_PARAMETER_WORDS: dict[str, tuple[str, str]] = {
    "pitch": ("low", "high"), "decay": ("short", "long"), "drive": ("clean", "driven"), "tilt": ("bright", "dark")}
#: a melody's tempo (quarter notes per minute) and register (mean MIDI pitch) -> (low word, high word)
MELODY_WORDS: dict[str, tuple[str, str]] = {"bpm": ("slow", "fast"), "register": ("low", "high")}


class GeneratedAudioDataset(Dataset):
    """Base class: renders ``per_class * len(classes)`` clips eagerly and encodes them.

    Subclasses set ``classes`` and implement :meth:`render` (and :meth:`make_captions` for more than
    the class name). The modality needs only ``sample_rate``, ``num_samples`` and
    ``encode_wave(wave) -> Tensor[C, F, T]``.
    """

    #: the items are made, not read from files a config names, so a bundle's own config of this
    #: data may be built again (``evaluate`` and ``recognizer`` without ``data=``)
    reads_files = False

    classes: list[str]

    def __init__(self, modality: Any, per_class: int, seed: int = 0) -> None:
        name = type(self).__name__
        self.classes = list(self.classes)
        if per_class < 1 or seed < 0:
            raise ValueError(f"{name}: need per_class >= 1 and seed >= 0, got {per_class}, {seed}")
        self.sample_rate, self.num_samples = int(modality.sample_rate), int(modality.num_samples)
        self.per_class, self.seed = per_class, seed
        count = per_class * len(self.classes)
        self.labels = [i % len(self.classes) for i in range(count)]
        self.waves = np.stack([self.render(label, np.random.default_rng([seed, i]))
                               for i, label in enumerate(self.labels)]).astype(np.float32)
        if self.waves.shape != (count, self.num_samples):
            raise ValueError(f"{name}: rendered {self.waves.shape}, expected ({count}, {self.num_samples})")
        self.x = torch.stack([modality.encode_wave(wave) for wave in self.waves])
        self.captions = self.make_captions()

    def render(self, label: int, rng: np.random.Generator) -> np.ndarray:
        """One float32 ``[num_samples]`` clip of class ``label``, drawing randomness only from ``rng``."""
        raise NotImplementedError

    def make_captions(self) -> list[str]:
        """Each item's caption, once every item is rendered; here its class name ("closed hat")."""
        return [spoken(self.classes[label]) for label in self.labels]

    def _caption(self, index: int, words: list[str], noun: str) -> str:
        """Item ``index``'s ``words`` in an order seeded by ``(seed, index)``, then ``noun``."""
        return caption_text(words, noun, item_rng(self.seed, index))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{type(self).__name__} index {index} out of range for length {len(self)}")
        index %= len(self)
        return {"x": self.x[index], "label": self.labels[index], "caption": self.captions[index]}


class DrumsDataset(GeneratedAudioDataset):
    """Drum one-shots, ``per_class`` of each of the 8 classes in ``DRUM_CLASSES``.

    ``parameters[i]`` holds where item ``i``'s pitch, decay, tilt and drive fell in their ranges (0-1).
    """

    classes = list(DRUM_CLASSES)

    def __init__(self, modality: Any, per_class: int = 200, seed: int = 0) -> None:
        self.parameters: list[dict[str, float]] = []
        super().__init__(modality, per_class, seed)

    def render(self, label: int, rng: np.random.Generator) -> np.ndarray:
        wave, parameters = drum_with_parameters(self.classes[label], rng, self.sample_rate, self.num_samples)
        self.parameters.append(parameters)
        return wave

    def make_captions(self) -> list[str]:
        """A draw's position in its uniform range is its percentile: the captions' percentiles apply as they are."""
        options = CaptionOptions()
        thresholds = dict.fromkeys(DRUM_PARAMETER_WORDS, (options.low, options.high))
        return [self._caption(i, words_for(drawn, thresholds, DRUM_PARAMETER_WORDS), spoken(self.classes[label]))
                for i, (drawn, label) in enumerate(zip(self.parameters, self.labels))]


class MelodiesDataset(GeneratedAudioDataset):
    """Random 4-8 note phrases filling the clip, ``per_class`` in each timbre of ``TIMBRES``.

    ``phrases[i]`` holds item ``i``'s notes as ``(start_seconds, end_seconds, midi_pitch)`` tuples,
    ``plans[i]`` them with their scale and tempo (:class:`~.synth_melodies.Phrase`).
    """

    classes = list(TIMBRES)

    def __init__(self, modality: Any, per_class: int = 100, seed: int = 0) -> None:
        self.phrases: list[list[tuple[float, float, int]]] = []
        self.plans: list[Phrase] = []
        super().__init__(modality, per_class, seed)

    def render(self, label: int, rng: np.random.Generator) -> np.ndarray:
        plan = phrase_plan(rng, self.num_samples / self.sample_rate)
        self.plans.append(plan)
        self.phrases.append(plan.notes)
        return render_phrase(plan.notes, self.classes[label], rng, self.sample_rate, self.num_samples)

    def make_captions(self) -> list[str]:
        """Tempo and register words by percentiles over every melody (neither depends on the timbre)."""
        measured = [{"bpm": plan.bpm, "register": float(np.mean([pitch for _, _, pitch in plan.notes]))}
                    for plan in self.plans]
        thresholds = group_thresholds(measured, ["melody"] * len(measured), list(MELODY_WORDS), CaptionOptions(),
                                      None)["melody"]
        return [self._caption(i, words_for(values, thresholds, MELODY_WORDS),
                              f"{self.classes[label]} melody in {spoken(plan.scale)}")
                for i, (values, plan, label) in enumerate(zip(measured, self.plans, self.labels))]
