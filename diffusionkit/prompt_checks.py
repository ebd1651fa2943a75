"""What a modality measures to judge whether generated items follow a text prompt.

A modality that can caption or measure its media offers two things (both optional, see
:class:`~diffusionkit.modality.Modality`):

- ``describe(batch)``: measured descriptors of model-space items, one dict per item, e.g.
  ``{"centroid_hz": 3120.0, "decay_s": 0.21}`` or ``{"colour": "red", "x": 0.31, "y": 0.72}``;
- ``prompt_checks()``: the checks ``diffusionkit evaluate prompts=true`` runs, each one of:

  * :class:`WordMatch`: a prompt names one word of several; the measured descriptor must equal
    the word's value (colour "red" drawn in red; a position word putting the centroid in
    the named half);
  * :class:`WordDirection`: two prompts that differ in one word, generated with the same seeds;
    the measured number must be higher for the ``high`` word ("bright" snare vs "dark" snare:
    spectral centroid).

``descriptor="class"`` means the class named by the evaluate judge (a recogniser trained on
the dataset), so prompts that name a class are checked without a modality measure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: a descriptor name meaning "the class the evaluate judge hears/sees"
JUDGED_CLASS = "class"


@dataclass(frozen=True)
class WordMatch:
    """Prompts ``template.format(word=w)`` for each ``w`` in ``words``; an item passes when its
    measured ``descriptor`` equals ``words[w]`` (or, for a number, lies in the half named by
    ``words[w]``: ``"low"`` below ``split``, ``"high"`` above it)."""

    name: str
    descriptor: str
    words: dict[str, str]
    template: str = "{word}"
    split: float | None = None
    #: words a model never saw in training that should still work (reported apart)
    unseen: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class WordDirection:
    """Prompts ``template.format(word=low)`` and ``template.format(word=high)`` generated with
    the same seeds; a pair passes when the ``high`` item measures more ``descriptor``."""

    name: str
    descriptor: str
    low: str
    high: str
    template: str = "{word}"
    #: True when the words are paraphrases a model never saw in training (reported apart)
    unseen: bool = False


PromptCheck = WordMatch | WordDirection
