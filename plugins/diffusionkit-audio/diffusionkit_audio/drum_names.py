"""Drum instrument names -> classes, by a documented, overridable keyword table.

A name is split into lower-case words: ``"Hi-Hat Closed (Paiste 14\")"`` -> ``hi hat closed paiste
14``; camelCase and letter/digit runs are split too (``BassDrum`` -> ``bass drum``, ``tomhi2`` ->
``tomhi 2``), and a few compounds are spelled out (``hihat``, ``semiopen``...).

A keyword is one or more words; it matches a name when every one of its words is a word of the
name, in any order (``closed hat`` matches "Hat Closed Dirty" and "Closed HH" via ``closed hh``).
A keyword word of 3 letters or more also matches a name word that starts with it (``tom`` ->
"tomhi2", ``open`` -> "Opened", ``clap`` -> "Claps"); shorter ones (``bd``, ``sd``, ``hh``,
``cl``, ``op``, ``pd``) must be the whole word. When several keywords match, the most specific
wins: most words, then most letters, then the earlier class in the table. So "Snare Rimshot" is
a snare (``rimshot`` beats ``rim``), "Rim Click" and "Side Stick" are rims, "Crash/Ride Bell"
is a ride (``ride bell``), "Crash/Ride" a crash, "Snare Roll" a roll.

Choices worth knowing: a rimshot (stick on head and rim at once) is a loud snare, not a rim; the
``rim`` class is the side stick / rim click / stick click. Semi-open hats are open hats; a hat
named with no closed/open/pedal word is ``hat``. Splash and china cymbals are crashes; a plain
"cymbal" is ``cymbal``. A plain "bell" (the bells of dunun drums, agogo) is percussion; ride
bells are rides. Keywords given by the user are tried before the table and win over it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

#: class -> keywords, in order of precedence for equally specific matches.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "kick": ("kick", "bass drum", "bd", "kik"),
    "snare": ("snare", "sd", "snr", "rimshot", "rim shot"),
    "rim": ("rim", "stick", "side stick", "sidestick", "cross stick", "crossstick", "rim click"),
    "clap": ("clap", "handclap"),
    "closed_hat": ("close hat", "close hh", "chh", "hat cl", "hh cl", "tight hat"),
    "open_hat": ("open hat", "open hh", "ohh", "hat op", "hh op", "semi hat"),
    "pedal_hat": ("pedal hat", "pedal hh", "foot hat", "foot hh", "hat pd", "hh pd", "phh"),
    "hat": ("hat", "hh"),
    "tom": ("tom",),
    "crash": ("crash", "splash", "china"),
    "ride": ("ride", "ride bell", "ride cup"),
    "cymbal": ("cymbal",),
    "cowbell": ("cowbell", "cow bell"),
    "roll": ("roll", "snare roll"),
    "percussion": ("conga", "bongo", "djembe", "cajon", "tabla", "tambourine", "tamb", "maraca", "shaker",
                   "clave", "woodblock", "wood block", "agogo", "triangle", "guiro", "cabasa", "timbal", "sangban",
                   "dunun", "kenkeni", "bell", "snap", "finger", "waterglass", "castanet", "vibraslap", "udu",
                   "surdo", "cuica", "chime"),
    "fx": ("fx", "sfx", "zap", "whistle", "laser", "sweep", "effect"),
}

#: single words that stand for several (after lower-casing).
COMPOUNDS = {"hihat": "hi hat", "hihats": "hi hats", "bassdrum": "bass drum", "semiopen": "semi open",
             "halfopen": "half open", "sidestick": "side stick", "crossstick": "cross stick"}

#: keyword words shorter than this must equal a name word; longer ones may start it.
PREFIX_MIN = 3

Keyword = tuple[str, ...]


def name_words(name: str) -> tuple[str, ...]:
    """The lower-case words of an instrument name (camelCase and letter/digit runs split)."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", str(name))
    words = re.findall(r"[a-z]+|\d+", text.lower())
    return tuple(part for word in words for part in COMPOUNDS.get(word, word).split())


def _word_matches(keyword_word: str, word: str) -> bool:
    if len(keyword_word) < PREFIX_MIN:
        return word == keyword_word
    return word.startswith(keyword_word)


def _matches(keyword: Keyword, words: tuple[str, ...]) -> bool:
    return all(any(_word_matches(part, word) for word in words) for part in keyword)


def _specificity(keyword: Keyword) -> tuple[int, int]:
    return len(keyword), sum(len(part) for part in keyword)


class KeywordTable:
    """Classifies instrument names: user keywords first, then :data:`KEYWORDS`.

    Args:
        extra: class -> keywords from the user (``data.dataset.keywords``); they win over the
            table, and may name new classes.
    """

    def __init__(self, extra: Mapping[str, Sequence[str] | str] | None = None) -> None:
        self.extra = self._parse(extra or {})
        self.table = self._parse(KEYWORDS)
        self._known: dict[str, str | None] = {}

    @staticmethod
    def _parse(table: Mapping[str, Sequence[str] | str]) -> list[tuple[str, Keyword]]:
        rules = []
        for name, keywords in table.items():
            for keyword in [keywords] if isinstance(keywords, str) else keywords:
                words = name_words(keyword)
                if not words:
                    raise ValueError(f"drum keywords: keyword {keyword!r} of class '{name}' has no letters or digits")
                rules.append((str(name), words))
        return rules

    @property
    def classes(self) -> list[str]:
        """Every class a name can map to (the user's new ones first)."""
        return list(dict.fromkeys(name for name, _ in self.extra + self.table))

    def classify(self, name: str) -> str | None:
        """The class of an instrument name, or None when no keyword matches."""
        if name not in self._known:
            self._known[name] = self._classify(name_words(name))
        return self._known[name]

    def _classify(self, words: tuple[str, ...]) -> str | None:
        for rules in (self.extra, self.table):
            found = [(rule, index) for index, rule in enumerate(rules) if _matches(rule[1], words)]
            if found:
                best = max(found, key=lambda item: (*_specificity(item[0][1]), -item[1]))
                return best[0][0]
        return None
