"""Text captions for drum one-shots from measured descriptors ("long bright punchy snare").

:func:`descriptors` measures a mono waveform (numpy only, a few ms per clip):

- ``centroid_hz``: the spectral centroid (Peeters 2004, "A large set of audio features for sound
  description", CUIDADO report, sec. 6.1: the magnitude-weighted mean frequency of a frame),
  averaged over ~32 ms frames weighted by their energy, so the sound counts and its silence not;
- ``decay_s``: from the envelope's peak until the envelope first falls :data:`DECAY_DB` (20 dB)
  below it. 20 dB rather than a reverberation time's 60 dB: many one-shots are faded, cut or sink
  into noise before 60 dB, and 20 dB is what the ear hears as the length of a hit. An exponential
  decay ``exp(-t / tau)`` measures ``tau * ln 10``; a sound that never falls 20 dB measures until the
  clip's end;
- ``pitch_hz``: the strongest spectral peak from 30 Hz to 1 kHz in the first 150 ms of the sound
  (Hann window, zero-padded to 0.5 Hz bins): the drum head's tone, robust where a pitch tracker
  (YIN) fails on noisy, inharmonic, swept or very short hits;
- ``crest_db``: peak over RMS of the sounding part (from the first to the last sample within
  40 dB of the peak), in dB: a sharp transient over a short body is punchy, a steady sound is soft
  (a constant sine measures 3 dB, an exponentially decaying one about 12.7 dB).

The envelope is the power in a centred 20 ms window (one period of a 50 Hz tone, so low drums
barely ripple), at every sample.

Captions: for each descriptor of :data:`WORD_PAIRS`, an item below the ``low`` percentile of its
class gets the low word, above ``high`` the high word, between them no word; a class with fewer
than ``min_class_items`` items uses absolute thresholds (:class:`CaptionOptions`). The words, in an
order shuffled per item by a seeded generator (so a model does not learn one order), come before
the class name: "long bright punchy snare", "short dark closed hat". With ``keep`` < 1 a dataset
draws a shorter caption each time it reads an item, each word kept with that probability (word
dropout), so a model also meets the class name alone or with one word, as users prompt. With
``synonyms`` > 0 each word is swapped, with that probability at each reading, for one of its
:data:`SYNONYMS` (caption paraphrasing, as text-to-image training rewrites its captions: Betker et
al. 2023, "Improving Image Generation with Better Captions"), so a model learns what the words mean
rather than one spelling of them; :data:`PARAPHRASES`, the words its prompt checks try, stay unseen.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from diffusionkit.prompt_checks import JUDGED_CLASS, PromptCheck, WordDirection, WordMatch

#: descriptor -> (word for low values, word for high values), in the order captions list them.
WORD_PAIRS: dict[str, tuple[str, str]] = {"decay_s": ("short", "long"), "centroid_hz": ("dark", "bright"),
                                          "pitch_hz": ("low", "high"), "crest_db": ("soft", "punchy")}
#: words no caption uses, for the same descriptors (prompt checks of paraphrases a model never saw).
PARAPHRASES: dict[str, tuple[str, str]] = {"pitch_hz": ("boomy", "thin"), "centroid_hz": ("muffled", "crisp"),
                                           "decay_s": ("tight", "ringing")}
#: other words for each caption word, swapped in at reading time (``synonyms`` > 0); none of them is
#: one of :data:`PARAPHRASES`, so those stay words a model never saw.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "short": ("brief", "staccato", "clipped"), "long": ("sustained", "lingering", "drawn-out"),
    "dark": ("warm", "dull", "mellow"), "bright": ("brilliant", "airy", "shiny"),
    "low": ("deep", "bassy", "low-pitched"), "high": ("high-pitched", "piercing", "small"),
    "soft": ("gentle", "quiet", "smooth"), "punchy": ("hard", "snappy", "aggressive")}
#: thresholds for classes with too few items to take percentiles of: about the 33rd and 67th
#: percentiles of each descriptor over every kept one-shot of Debian's hydrogen-drumkits.
ABSOLUTE_THRESHOLDS: dict[str, tuple[float, float]] = {"decay_s": (0.1, 0.3), "centroid_hz": (1000.0, 3000.0),
                                                       "pitch_hz": (125.0, 400.0), "crest_db": (16.0, 19.0)}
#: the drums prompt checks name: the ones with a tone, a colour and a length to compare.
PROMPT_INSTRUMENTS = ("kick", "snare", "tom")

#: dB below the envelope's peak: where the decay ends, what still sounds (crest), where the pitch's window starts
DECAY_DB, SOUND_DB, ONSET_DB = 20.0, 40.0, 20.0
#: the envelope's window, the pitch's window from the onset, the centroid's frames (rounded up to a power of 2)
ENVELOPE_SECONDS, PITCH_SECONDS, FRAME_SECONDS = 0.02, 0.15, 0.032
PITCH_BAND_HZ, PITCH_RESOLUTION_HZ = (30.0, 1000.0), 0.5
_SILENT = 1e-6  # a peak below this (-120 dBFS) is silence: every descriptor 0


# ---------------------------------------------------------------------------- descriptors


def _mono(wave: np.ndarray) -> np.ndarray:
    """``[samples]`` or ``[channels, samples]`` as a float64 mono mix."""
    wave = np.asarray(wave, dtype=np.float64)
    return wave.reshape(-1, wave.shape[-1]).mean(axis=0)


def envelope_db(wave: np.ndarray, sample_rate: int, seconds: float = ENVELOPE_SECONDS) -> np.ndarray:
    """Mean power (dB) in a centred ``seconds`` window at every sample of a mono ``wave``."""
    width = max(1, round(seconds * sample_rate))
    half = width // 2
    cumulative = np.concatenate([[0.0], np.cumsum(np.pad(wave**2, (half, width - half)))])
    power = (cumulative[width: width + wave.size] - cumulative[: wave.size]) / width
    return 10.0 * np.log10(np.maximum(power, 1e-20))


def spectral_centroid(wave: np.ndarray, sample_rate: int) -> float:
    """Frame centroids (magnitude-weighted, Peeters 2004) averaged with the frames' energies as weights."""
    size = 1 << int(np.ceil(np.log2(FRAME_SECONDS * sample_rate)))
    padded = np.pad(wave, (0, max(0, size - wave.size)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, size)[:: size // 4] * np.hanning(size)
    magnitude = np.abs(np.fft.rfft(frames, axis=1))
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    total = magnitude.sum(axis=1)
    centroids = magnitude @ freqs / np.maximum(total, 1e-20)
    energy = (magnitude**2).sum(axis=1)
    return float(centroids @ energy / energy.sum()) if energy.sum() > 0 else 0.0


def decay_seconds(envelope: np.ndarray, sample_rate: int, drop_db: float = DECAY_DB) -> float:
    """From the envelope's peak until it first falls ``drop_db`` below it (or until the end)."""
    peak = int(np.argmax(envelope))
    below = np.flatnonzero(envelope[peak:] <= envelope[peak] - drop_db)
    return float(below[0] if below.size else envelope.size - peak) / sample_rate


def dominant_pitch(wave: np.ndarray, sample_rate: int, start: int) -> float:
    """The strongest spectral peak in :data:`PITCH_BAND_HZ` of the :data:`PITCH_SECONDS` from ``start``."""
    segment = wave[start: start + max(2, round(PITCH_SECONDS * sample_rate))]
    size = max(1 << int(np.ceil(np.log2(sample_rate / PITCH_RESOLUTION_HZ))), segment.size)
    magnitude = np.abs(np.fft.rfft(segment * np.hanning(segment.size), size))
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    band = np.flatnonzero((freqs >= PITCH_BAND_HZ[0]) & (freqs <= min(PITCH_BAND_HZ[1], sample_rate / 2)))
    return float(freqs[band[np.argmax(magnitude[band])]]) if band.size and magnitude[band].max() > 0 else 0.0


def crest_db(wave: np.ndarray, sound_db: float = SOUND_DB) -> float:
    """Peak over RMS (dB) from the first to the last sample within ``sound_db`` of the peak."""
    level = np.abs(wave)
    sounding = np.flatnonzero(level >= level.max() * 10.0 ** (-sound_db / 20.0))
    part = wave[sounding[0]: sounding[-1] + 1]
    rms = np.sqrt(np.mean(part**2))
    return float(20.0 * np.log10(np.abs(part).max() / rms)) if rms > 0 else 0.0


def descriptors(wave: np.ndarray, sample_rate: int) -> dict[str, float]:
    """``centroid_hz``, ``decay_s``, ``pitch_hz`` and ``crest_db`` of a waveform (see the module
    docstring); a stereo ``[channels, samples]`` wave is mixed to mono, and silence measures 0."""
    mono = _mono(wave)
    if mono.size == 0 or np.abs(mono).max() < _SILENT:
        return dict.fromkeys(("centroid_hz", "decay_s", "pitch_hz", "crest_db"), 0.0)  # the order measured
    envelope = envelope_db(mono, sample_rate)
    onset = int(np.argmax(envelope >= envelope.max() - ONSET_DB))
    return {"centroid_hz": spectral_centroid(mono, sample_rate), "decay_s": decay_seconds(envelope, sample_rate),
            "pitch_hz": dominant_pitch(mono, sample_rate, onset), "crest_db": crest_db(mono)}


# ---------------------------------------------------------------------------- words


@dataclass(frozen=True)
class CaptionOptions:
    """How descriptors become words (``data.dataset.captions``).

    ``low``/``high``: percentiles (0-1) of a descriptor within the item's class, below which the
    low word and above which the high word is given; ``min_class_items``: a class with fewer items
    uses ``absolute`` thresholds (``{descriptor: [low, high]}``, merged over
    :data:`ABSOLUTE_THRESHOLDS`); ``with_kit``: end with "from <kit>"; ``seed``: of the word order.
    """

    low: float = 0.33
    high: float = 0.67
    min_class_items: int = 5
    absolute: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(ABSOLUTE_THRESHOLDS))
    with_kit: bool = False
    seed: int = 0
    keep: float = 1.0
    synonyms: float = 0.0

    def __post_init__(self) -> None:
        absolute = {**ABSOLUTE_THRESHOLDS, **{str(k): _pair(k, v) for k, v in dict(self.absolute).items()}}
        object.__setattr__(self, "absolute", absolute)
        if not 0.0 <= self.low < self.high <= 1.0:
            raise ValueError(f"captions: need 0 <= low < high <= 1, got low={self.low}, high={self.high}")
        for name in ("keep", "synonyms"):  # probabilities, also when a config gives "0.5" or 1
            try:
                object.__setattr__(self, name, float(getattr(self, name)))
            except (TypeError, ValueError):
                raise ValueError(f"captions: {name} is a probability from 0 to 1; got {getattr(self, name)!r}") from None
        if not 0.0 < self.keep <= 1.0:
            raise ValueError(f"captions: keep is the probability of keeping each word, 0 < keep <= 1; got {self.keep}")
        if not 0.0 <= self.synonyms <= 1.0:
            raise ValueError("captions: synonyms is the probability of swapping each word for another, "
                             f"0 <= synonyms <= 1; got {self.synonyms}")
        if int(self.min_class_items) < 1:
            raise ValueError(f"captions: min_class_items must be >= 1, got {self.min_class_items}")
        unknown = sorted(set(absolute) - set(WORD_PAIRS))
        if unknown:
            raise ValueError(f"captions: absolute thresholds for unknown descriptors {unknown} (known: "
                             f"{', '.join(WORD_PAIRS)})")

    @property
    def varies(self) -> bool:
        """Whether a caption is drawn anew at each reading (word dropout or synonyms)."""
        return self.keep < 1.0 or self.synonyms > 0.0

    @classmethod
    def of(cls, config: CaptionOptions | Mapping | None) -> CaptionOptions:
        """Options from a config mapping (e.g. Hydra's), None for the defaults, or options as they are."""
        if isinstance(config, CaptionOptions):
            return config
        config = dict(config or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(f"captions: unknown options {unknown} (options: {', '.join(sorted(names))})")
        return cls(**config)


def _pair(name: object, value: object) -> tuple[float, float]:
    """``[low, high]`` thresholds as floats, low < high."""
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        low = high = float("nan")
    if not low < high:
        raise ValueError(f"captions: absolute thresholds of {name} must be [low, high] with low < high, got {value}")
    return low, high


def spoken(name: str) -> str:
    """A class or kit name as words: ``closed_hat`` -> ``closed hat``."""
    return " ".join(str(name).replace("_", " ").split())


def group_thresholds(measured: Sequence[Mapping[str, float]], groups: Sequence[str], names: Sequence[str],
                     options: CaptionOptions, absolute: Mapping[str, tuple[float, float]] | None
                     ) -> dict[str, dict[str, tuple[float, float]]]:
    """``{group: {descriptor: (low, high)}}``: the ``options.low``/``high`` percentiles of each of
    ``names`` over the items of a group, or ``absolute[name]`` for a group of too few items (without
    ``absolute``, percentiles however few)."""
    thresholds: dict[str, dict[str, tuple[float, float]]] = {}
    for group in dict.fromkeys(groups):
        members = [m for m, g in zip(measured, groups) if g == group]
        few = absolute is not None and len(members) < options.min_class_items
        thresholds[group] = {name: absolute[name] if few else _percentiles([m[name] for m in members], options)
                             for name in names}
    return thresholds


def _percentiles(values: Sequence[float], options: CaptionOptions) -> tuple[float, float]:
    low, high = np.quantile(np.asarray(values, dtype=np.float64), [options.low, options.high])
    return float(low), float(high)


def words_for(measured: Mapping[str, float], thresholds: Mapping[str, tuple[float, float]],
              pairs: Mapping[str, tuple[str, str]]) -> list[str]:
    """The low word of each descriptor below its low threshold, the high word above its high one."""
    words = []
    for name, (low_word, high_word) in pairs.items():
        low, high = thresholds[name]
        if measured[name] < low:
            words.append(low_word)
        elif measured[name] > high:
            words.append(high_word)
    return words


def item_rng(seed: int, key: str | int) -> np.random.Generator:
    """The generator that orders one item's words: by ``seed`` and the item's key (its file or index)."""
    return np.random.default_rng([int(seed), zlib.crc32(str(key).encode())])


def caption_text(words: Sequence[str], noun: str, rng: np.random.Generator) -> str:
    """``words`` in an order drawn from ``rng``, then ``noun``: ``"long bright snare"``."""
    return Caption(ordered(words, rng), noun).text()


def ordered(words: Sequence[str], rng: np.random.Generator) -> tuple[str, ...]:
    """``words`` in an order drawn from ``rng``."""
    return tuple(words[i] for i in rng.permutation(len(words))) if words else ()


@dataclass(frozen=True)
class Caption:
    """One item's caption in parts: its descriptor ``words`` in order, the class ``noun``, a ``tail``
    (" from <kit>"). :meth:`text` writes it whole, or with each word kept with probability ``keep``
    and swapped for one of its :data:`SYNONYMS` with probability ``synonyms``."""

    words: tuple[str, ...]
    noun: str
    tail: str = ""

    def text(self, keep: float = 1.0, rng: np.random.Generator | None = None, synonyms: float = 0.0) -> str:
        if (keep < 1.0 or synonyms > 0.0) and rng is None:
            raise ValueError("Caption.text: dropping words (keep < 1) or swapping them (synonyms > 0) needs a "
                             "random generator")
        words = self.words if keep >= 1.0 else [w for w in self.words if rng.random() < keep]
        if synonyms > 0.0:
            words = [_swapped(w, rng) if w in SYNONYMS and rng.random() < synonyms else w for w in words]
        return " ".join([*words, self.noun]) + self.tail


def _swapped(word: str, rng: np.random.Generator) -> str:
    """One of ``word``'s :data:`SYNONYMS`, drawn from ``rng``."""
    choices = SYNONYMS[word]
    return choices[int(rng.integers(len(choices)))]


def captions_of(measured: Sequence[Mapping[str, float]], classes: Sequence[str], keys: Sequence[str],
                options: CaptionOptions | None = None, kits: Sequence[str] | None = None) -> list[Caption]:
    """Each item's :class:`Caption` from its descriptors, its class name, and (``with_kit``) its kit.

    ``keys`` name the items (e.g. their files) and seed their word order, so an item's caption does
    not depend on which other items are in the dataset (except through its class's percentiles)."""
    options = options or CaptionOptions()
    thresholds = group_thresholds(measured, classes, list(WORD_PAIRS), options, options.absolute)
    return [Caption(ordered(words_for(values, thresholds[name], WORD_PAIRS), item_rng(options.seed, key)),
                    spoken(name), f" from {spoken(kits[index])}" if options.with_kit and kits else "")
            for index, (values, name, key) in enumerate(zip(measured, classes, keys))]


def caption_items(measured: Sequence[Mapping[str, float]], classes: Sequence[str], keys: Sequence[str],
                  options: CaptionOptions | None = None, kits: Sequence[str] | None = None) -> list[str]:
    """Each item's whole caption (see :func:`captions_of`): "long bright punchy snare"."""
    return [caption.text() for caption in captions_of(measured, classes, keys, options, kits)]


# ---------------------------------------------------------------------------- prompt checks


def _directions(pairs: Mapping[str, tuple[str, str]], instruments: Sequence[str], unseen: bool) -> list[WordDirection]:
    return [WordDirection(f"{low}/{high} {spoken(instrument)}", name, low, high, f"{{word}} {spoken(instrument)}",
                          unseen=unseen)
            for name, (low, high) in pairs.items() for instrument in instruments]


def drum_prompt_checks(classes: Sequence[str], instruments: Sequence[str] = PROMPT_INSTRUMENTS) -> list[PromptCheck]:
    """A direction check per word pair and instrument (``"bright snare"`` measures a higher centroid
    than ``"dark snare"``), the same with unseen paraphrases (``"crisp"``/``"muffled"``), and a
    match of each class name with the class the evaluate judge hears."""
    words = {spoken(name): str(name) for name in classes}
    return [*_directions(WORD_PAIRS, instruments, unseen=False), *_directions(PARAPHRASES, instruments, unseen=True),
            WordMatch("instrument", JUDGED_CLASS, words)]
