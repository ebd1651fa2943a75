"""Generated, offline audio datasets: drum one-shots and short melodic phrases.

Datasets yield ``{"x": Tensor[C, F, T], "label": int}`` (``x`` in the modality's model space, from
``modality.encode_wave``) and expose ``classes`` and the raw ``waves`` (float32 ``[N, num_samples]``).
Item ``i`` has label ``i % len(classes)`` and its own generator ``np.random.default_rng([seed, i])``,
so it depends only on ``(seed, i)``, not on ``per_class``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .synth_drums import DRUM_CLASSES, synth_drum
from .synth_melodies import TIMBRES, random_phrase, render_phrase


class GeneratedAudioDataset(Dataset):
    """Base class: renders ``per_class * len(classes)`` clips eagerly and encodes them.

    Subclasses set ``classes`` and implement :meth:`render`. The modality needs only
    ``sample_rate``, ``num_samples`` and ``encode_wave(wave) -> Tensor[C, F, T]``.
    """

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

    def render(self, label: int, rng: np.random.Generator) -> np.ndarray:
        """One float32 ``[num_samples]`` clip of class ``label``, drawing randomness only from ``rng``."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{type(self).__name__} index {index} out of range for length {len(self)}")
        index %= len(self)
        return {"x": self.x[index], "label": self.labels[index]}


class DrumsDataset(GeneratedAudioDataset):
    """Drum one-shots, ``per_class`` of each of the 8 classes in ``DRUM_CLASSES``."""

    classes = list(DRUM_CLASSES)

    def __init__(self, modality: Any, per_class: int = 200, seed: int = 0) -> None:
        super().__init__(modality, per_class, seed)

    def render(self, label: int, rng: np.random.Generator) -> np.ndarray:
        return synth_drum(self.classes[label], rng, self.sample_rate, self.num_samples)


class MelodiesDataset(GeneratedAudioDataset):
    """Random 4-8 note phrases filling the clip, ``per_class`` in each timbre of ``TIMBRES``.

    ``phrases[i]`` holds item ``i``'s notes as ``(start_seconds, end_seconds, midi_pitch)`` tuples.
    """

    classes = list(TIMBRES)

    def __init__(self, modality: Any, per_class: int = 100, seed: int = 0) -> None:
        self.phrases: list[list[tuple[float, float, int]]] = []
        super().__init__(modality, per_class, seed)

    def render(self, label: int, rng: np.random.Generator) -> np.ndarray:
        phrase = random_phrase(rng, self.num_samples / self.sample_rate)
        self.phrases.append(phrase)
        return render_phrase(phrase, self.classes[label], rng, self.sample_rate, self.num_samples)
