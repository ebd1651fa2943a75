"""Captions and descriptors: measured on known signals, words by class percentiles, the datasets'
captions (tiny Hydrogen kits, synthetic drums and melodies), the modality's describe and prompt checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusionkit_audio.captions import (ABSOLUTE_THRESHOLDS, PARAPHRASES, PROMPT_INSTRUMENTS, SYNONYMS,
                                         WORD_PAIRS, CaptionOptions, caption_items, captions_of, descriptors, words_for)
from diffusionkit_audio.datasets import DRUM_PARAMETER_WORDS, DrumsDataset, MelodiesDataset
from diffusionkit_audio.drumkits_dataset import DrumKitsDataset
from diffusionkit_audio.modality import AudioModality
from diffusionkit_audio.synth_drums import DRUM_CLASSES
from diffusionkit_audio.synth_melodies import TIMBRES
from tiny_kits import write_tiny_kits

from diffusionkit.prompt_checks import JUDGED_CLASS, WordDirection, WordMatch

RATE = 16000
TIME = np.arange(RATE) / RATE  # one second
CLASSES = ["kick", "snare", "clap", "closed_hat", "open_hat", "rim"]
KEYS = set(WORD_PAIRS)


def decaying_sine(hz: float, tau: float) -> np.ndarray:
    return 0.8 * np.sin(2 * np.pi * hz * TIME) * np.exp(-TIME / tau)


def noise(seed: int = 0, below_hz: float | None = None, tau: float = 0.1) -> np.ndarray:
    """Decaying white noise, or low-passed (8th-order FFT low-pass at ``below_hz``)."""
    white = np.random.default_rng(seed).standard_normal(TIME.size)
    if below_hz is not None:
        freqs = np.fft.rfftfreq(TIME.size, 1.0 / RATE)
        white = np.fft.irfft(np.fft.rfft(white) / np.sqrt(1.0 + (freqs / below_hz) ** 8), TIME.size)
    wave = white * np.exp(-TIME / tau)
    return 0.5 * wave / np.abs(wave).max()


# ---------------------------------------------------------------------------- descriptors


@pytest.mark.parametrize("hz", [60.0, 400.0])
def test_pitch_is_the_tone_of_a_decaying_sine(hz):
    assert descriptors(decaying_sine(hz, 0.3), RATE)["pitch_hz"] == pytest.approx(hz, rel=0.02)


def test_white_noise_is_brighter_than_low_passed_noise():
    white, dull = descriptors(noise(1), RATE)["centroid_hz"], descriptors(noise(1, below_hz=500), RATE)["centroid_hz"]
    assert white == pytest.approx(RATE / 4, rel=0.1)  # flat up to Nyquist: the mean frequency is a quarter of the rate
    assert dull < 600 < 4 * dull < white


def test_the_centroid_is_weighted_by_energy():
    """A loud 200 Hz hit with a 40 dB quieter 6 kHz tail is a 200 Hz sound; silence after it changes nothing."""
    wave = np.where(TIME < 0.1, 0.8 * np.sin(2 * np.pi * 200 * TIME), 0.008 * np.sin(2 * np.pi * 6000 * TIME))
    centroid = descriptors(wave, RATE)["centroid_hz"]
    assert centroid < 300
    assert descriptors(np.concatenate([wave, np.zeros(RATE)]), RATE)["centroid_hz"] == pytest.approx(centroid, rel=0.01)


@pytest.mark.parametrize("tau", [0.01, 0.05, 0.2])
def test_decay_is_the_time_to_fall_20_db(tau):
    """exp(-t / tau) falls 20 dB in tau * ln 10, for a tone and for noise."""
    expected = tau * math.log(10)
    assert descriptors(decaying_sine(440, tau), RATE)["decay_s"] == pytest.approx(expected, rel=0.05, abs=0.002)
    assert descriptors(noise(2, tau=tau), RATE)["decay_s"] == pytest.approx(expected, rel=0.15, abs=0.003)


def test_a_sound_that_does_not_fall_20_db_lasts_until_the_end():
    assert descriptors(decaying_sine(440, 10.0), RATE)["decay_s"] > 0.95


def test_crest_of_a_steady_and_a_decaying_tone_and_of_a_hit():
    steady = descriptors(0.5 * np.sin(2 * np.pi * 440 * TIME), RATE)["crest_db"]
    assert steady == pytest.approx(10 * math.log10(2), abs=0.05)  # a sine's peak is sqrt(2) times its RMS
    # exp(-t/tau) until 40 dB down (4.6 tau): mean square 0.5 * (1 - 1e-4) / (2 * ln 100) -> 12.65 dB
    assert descriptors(decaying_sine(440, 0.2), RATE)["crest_db"] == pytest.approx(12.65, abs=0.2)
    hit = 0.1 * np.sin(2 * np.pi * 200 * TIME)
    hit[100:120] += 0.9  # a sharp transient over a quiet body: punchy
    assert descriptors(hit, RATE)["crest_db"] > steady + 10


def test_stereo_is_mixed_and_silence_measures_zero():
    tone = decaying_sine(300, 0.1)
    assert descriptors(np.stack([tone, tone]), RATE) == descriptors(tone, RATE)
    assert descriptors(np.zeros(RATE), RATE) == dict.fromkeys(KEYS, 0.0)


# ---------------------------------------------------------------------------- words


def _measured(decays: list[float]) -> list[dict[str, float]]:
    """Items differing only in decay; the other descriptors in the middle of the absolute ranges."""
    middle = {name: sum(pair) / 2 for name, pair in ABSOLUTE_THRESHOLDS.items()}
    return [{**middle, "decay_s": decay} for decay in decays]


def test_words_follow_the_percentiles_of_the_items_class():
    """Kicks decaying in 0.1-0.6 s: the shortest two are short, the longest two long, each for a
    kick; the same decays in a two-item class take the absolute thresholds (0.1, 0.3 s)."""
    kicks, toms = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.05, 0.35]
    captions = caption_items(_measured(kicks + toms), ["kick"] * 6 + ["tom"] * 2, [str(i) for i in range(8)])
    assert captions[:6] == ["short kick", "short kick", "kick", "kick", "long kick", "long kick"]
    assert captions[6:] == ["short tom", "long tom"]
    wider = CaptionOptions(low=0.1, high=0.9)
    assert caption_items(_measured(kicks), ["kick"] * 6, list("abcdef"), wider) == ["short kick"] + ["kick"] * 4 + [
        "long kick"]


def test_words_come_in_a_seeded_order_then_the_class_name_with_spaces():
    measured = [{"decay_s": 1.0, "centroid_hz": 9000.0, "pitch_hz": 1.0, "crest_db": 30.0}]  # long bright low punchy
    orders = {caption_items(measured, ["closed_hat"], [f"file{i}.wav"])[0] for i in range(40)}
    assert all(c.endswith(" closed hat") and sorted(c.split()[:4]) == ["bright", "long", "low", "punchy"]
               for c in orders)
    assert len(orders) > 5  # shuffled per item, by its key: the same key gives the same order
    assert caption_items(measured, ["closed_hat"], ["a.wav"]) == caption_items(measured, ["closed_hat"], ["a.wav"])
    kit = caption_items(measured, ["rim"], ["x"], CaptionOptions(with_kit=True), kits=["Gimme_A Hand"])[0]
    assert kit.endswith(" rim from Gimme A Hand")


def test_word_dropout_keeps_the_noun_and_draws_shorter_captions():
    measured = [{"decay_s": 1.0, "centroid_hz": 9000.0, "pitch_hz": 1.0, "crest_db": 30.0}]
    caption = captions_of(measured, ["snare"], ["a.wav"], CaptionOptions(with_kit=True), kits=["Kit"])[0]
    assert caption.text() == " ".join([*caption.words, "snare from Kit"]) and len(caption.words) == 4
    rng = np.random.default_rng(0)
    drawn = [caption.text(0.5, rng) for _ in range(400)]
    assert all(d.endswith("snare from Kit") for d in drawn)
    lengths = np.array([len(d.split()) - 3 for d in drawn])  # descriptor words left
    assert 1.7 < lengths.mean() < 2.3 and (lengths == 0).any() and (lengths == 4).any()
    kept = [d.split()[:-3] for d in drawn]
    assert all(w == [x for x in caption.words if x in w] for w in kept)  # the order is kept
    with pytest.raises(ValueError, match="keep is the probability of keeping each word, 0 < keep <= 1; got 0"):
        CaptionOptions(keep=0)


def test_synonyms_swap_words_for_their_own_synonyms_and_never_for_the_unseen_paraphrases():
    measured = [{"decay_s": 1.0, "centroid_hz": 9000.0, "pitch_hz": 1.0, "crest_db": 30.0}]
    caption = captions_of(measured, ["snare"], ["a.wav"])[0]
    assert sorted(caption.words) == ["bright", "long", "low", "punchy"]
    rng = np.random.default_rng(0)
    assert caption.text(1.0, rng, synonyms=0.0) == caption.text()
    swapped = [caption.text(1.0, rng, synonyms=1.0).split()[:-1] for _ in range(200)]
    for words in swapped:  # every word swapped for one of its own synonyms, in the same place
        assert all(new in SYNONYMS[old] for old, new in zip(caption.words, words))
    assert {w for words in swapped for w in words} == {s for w in caption.words for s in SYNONYMS[w]}
    half = [caption.text(1.0, rng, synonyms=0.5).split()[:-1] for _ in range(400)]
    kept = np.mean([new == old for words in half for old, new in zip(caption.words, words)])
    assert 0.42 < kept < 0.58
    assert set(SYNONYMS) == {w for pair in WORD_PAIRS.values() for w in pair}
    unseen = {w for pair in PARAPHRASES.values() for w in pair}
    assert not unseen & {s for words in SYNONYMS.values() for s in words}  # the prompt checks' words stay unseen
    with pytest.raises(ValueError, match="needs a random generator"):
        caption.text(synonyms=0.5)
    with pytest.raises(ValueError, match="synonyms is the probability of swapping each word for another, "
                                         "0 <= synonyms <= 1; got 1.5"):
        CaptionOptions(synonyms=1.5)
    assert CaptionOptions(synonyms="0.5").synonyms == 0.5 and CaptionOptions(synonyms=1).varies  # as configs give them
    with pytest.raises(ValueError, match="synonyms is a probability from 0 to 1; got 'often'"):
        CaptionOptions(synonyms="often")


def test_options_from_a_config_mapping_and_their_errors():
    options = CaptionOptions.of({"low": 0.2, "absolute": {"decay_s": [0.05, 0.5]}})
    assert options.absolute == {**ABSOLUTE_THRESHOLDS, "decay_s": (0.05, 0.5)} and options.high == 0.67
    assert CaptionOptions.of(None) == CaptionOptions()
    with pytest.raises(ValueError, match=r"captions: unknown options \['colour'\]"):
        CaptionOptions.of({"colour": 1})
    with pytest.raises(ValueError, match="need 0 <= low < high <= 1"):
        CaptionOptions(low=0.7, high=0.3)
    with pytest.raises(ValueError, match="absolute thresholds of decay_s must be"):
        CaptionOptions.of({"absolute": {"decay_s": [0.5, 0.1]}})
    with pytest.raises(ValueError, match=r"unknown descriptors \['loudness'\]"):
        CaptionOptions.of({"absolute": {"loudness": [1, 2]}})


# ---------------------------------------------------------------------------- real kits


@pytest.fixture(scope="module")
def modality() -> AudioModality:
    return AudioModality()


@pytest.fixture(scope="module")
def kits(tmp_path_factory):
    return write_tiny_kits(tmp_path_factory.mktemp("drumkits"))


@pytest.fixture(scope="module")
def drumkits(modality, kits) -> DrumKitsDataset:
    return DrumKitsDataset(modality, root=kits, split="all", classes=CLASSES, cache=False)


def test_kit_items_carry_captions_of_their_measured_clips(drumkits):
    assert len(drumkits.captions) == len(drumkits) == 13
    for i in range(len(drumkits)):
        name = CLASSES[drumkits.labels[i]].replace("_", " ")
        assert drumkits[i]["caption"] == drumkits.captions[i] and drumkits.captions[i].endswith(name)
        assert drumkits.descriptors[i] == descriptors(drumkits.waves[i], RATE)  # the prepared clip, measured


def test_kit_captions_use_percentiles_in_big_classes_and_absolute_thresholds_in_small(drumkits):
    kicks = [i for i, label in enumerate(drumkits.labels) if CLASSES[label] == "kick"]
    assert len(kicks) == 6  # >= 5: by the kicks' percentiles, so 2 of 6 are short and 2 long
    words = [drumkits.captions[i].split()[:-1] for i in kicks]
    for low_word, high_word in WORD_PAIRS.values():
        assert sum(low_word in w for w in words) == 2 and sum(high_word in w for w in words) == 2
    snares = [i for i, label in enumerate(drumkits.labels) if CLASSES[label] == "snare"]
    for i in snares:  # 3 snares: absolute thresholds
        expected = words_for(drumkits.descriptors[i], ABSOLUTE_THRESHOLDS, WORD_PAIRS)
        assert sorted(drumkits.captions[i].split()[:-1]) == sorted(expected)


def test_the_cache_keeps_the_descriptors(modality, kits, tmp_path, monkeypatch):
    first = DrumKitsDataset(modality, root=kits, split="all", classes=CLASSES, cache_dir=tmp_path)
    monkeypatch.setattr("diffusionkit_audio.drumkits_dataset.descriptors", lambda *a: pytest.fail("measured again"))
    second = DrumKitsDataset(modality, root=kits, split="all", classes=CLASSES, cache_dir=tmp_path)
    assert second._cache.hits == 4 and second.descriptors == first.descriptors and second.captions == first.captions


def test_kit_items_read_with_word_dropout_draw_shorter_captions(modality, kits):
    dropping = DrumKitsDataset(modality, root=kits, split="all", classes=CLASSES, cache=False,
                               captions={"keep": 0.9})
    worded = [i for i, c in enumerate(dropping.caption_parts) if c.words]
    assert worded  # the tiny kits' items get descriptor words
    read = {dropping[worded[0]]["caption"] for _ in range(100)}
    assert dropping.captions[worded[0]] in read and len(read) > 1
    assert all(c.endswith(dropping.caption_parts[worded[0]].noun) for c in read)
    swapping = DrumKitsDataset(modality, root=kits, split="all", classes=CLASSES, cache=False,
                               captions={"synonyms": 1.0})
    part = swapping.caption_parts[worded[0]]
    read = [swapping[worded[0]]["caption"].removesuffix(part.noun).split() for _ in range(20)]
    assert all(new in SYNONYMS[old] for r in read for old, new in zip(part.words, r, strict=True))
    assert swapping.item_as_is(worded[0])["caption"] == swapping.captions[worded[0]]  # as validation reads it


def test_the_config_takes_caption_options(kits):
    from hydra.utils import instantiate

    from diffusionkit.config import compose_config

    cfg = compose_config("train", ["modality=audio", "data=drumkits", f"data.dataset.root={kits}",
                                   "data.dataset.split=all", "data.dataset.cache=false",
                                   f"data.dataset.classes=[{','.join(CLASSES)}]",
                                   "data.dataset.captions.with_kit=true", "data.dataset.captions.low=0.2"])
    built = instantiate(cfg.data.dataset)
    assert built.caption_options.low == 0.2 and built.caption_options.absolute == ABSOLUTE_THRESHOLDS
    assert all(caption.endswith(f" from {kit}") for caption, kit in zip(built.captions, built.kits))


# ---------------------------------------------------------------------------- synthetic data


class StubModality:
    sample_rate, num_samples = RATE, 16128

    def encode_wave(self, wave: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(wave[:64])[None, None]


def test_synthetic_drum_captions_name_the_class_and_the_drawn_parameters():
    drums = DrumsDataset(StubModality(), per_class=6, seed=3)
    assert len(drums.captions) == len(drums) == 48
    for i, caption in enumerate(drums.captions):
        name = DRUM_CLASSES[i % 8].replace("_", " ")
        assert caption.endswith(name) and drums[i]["caption"] == caption
        words = caption.removesuffix(name).split()
        for parameter, (low_word, high_word) in DRUM_PARAMETER_WORDS.items():
            position = drums.parameters[i][parameter]
            assert (low_word in words) == (position < 0.33) and (high_word in words) == (position > 0.67)
    assert len(set(drums.captions)) > 30


def test_melody_captions_name_timbre_scale_tempo_and_register():
    melodies = MelodiesDataset(StubModality(), per_class=4, seed=1)
    bpm = np.array([plan.bpm for plan in melodies.plans])
    for i, caption in enumerate(melodies.captions):
        plan = melodies.plans[i]
        assert caption.endswith(f"{TIMBRES[i % 5]} melody in {plan.scale.replace('_', ' ')}")
        assert ("fast" in caption.split()) == (plan.bpm > np.quantile(bpm, 0.67))
        assert ("slow" in caption.split()) == (plan.bpm < np.quantile(bpm, 0.33))
        assert melodies.phrases[i] == plan.notes


# ---------------------------------------------------------------------------- the modality


def test_describe_decodes_and_measures_each_item(modality):
    dull, bright, long = noise(4, below_hz=400), noise(4), noise(5, tau=0.3)
    batch = torch.stack([modality.encode_wave(w) for w in (dull, bright, long)])
    measured = modality.describe(batch)
    assert len(measured) == 3 and all(set(m) == KEYS for m in measured)
    assert measured[1]["centroid_hz"] > 2 * measured[0]["centroid_hz"]
    assert measured[2]["decay_s"] > 2 * measured[1]["decay_s"]
    assert modality.describe(batch[:0]) == []


def test_prompt_checks_compare_word_pairs_paraphrases_and_name_classes(modality):
    checks = modality.prompt_checks()
    directions = [c for c in checks if isinstance(c, WordDirection)]
    seen = {(c.descriptor, c.low, c.high, c.template) for c in directions if not c.unseen}
    assert seen == {(name, *pair, f"{{word}} {instrument}") for name, pair in WORD_PAIRS.items()
                    for instrument in PROMPT_INSTRUMENTS}
    unseen = [(c.descriptor, c.low, c.high) for c in directions if c.unseen]
    assert len(unseen) == 3 * len(PROMPT_INSTRUMENTS) and set(unseen) == {
        ("pitch_hz", "boomy", "thin"), ("centroid_hz", "muffled", "crisp"), ("decay_s", "tight", "ringing")}
    captioned = {word for pair in WORD_PAIRS.values() for word in pair}
    assert not captioned & {word for pair in PARAPHRASES.values() for word in pair}  # no caption says them
    assert {c.descriptor for c in directions} <= KEYS  # what describe measures
    assert len({c.name for c in checks}) == len(checks)
    (match,) = [c for c in checks if isinstance(c, WordMatch)]
    assert match.descriptor == JUDGED_CLASS and match.words["closed hat"] == "closed_hat"
    assert sorted(match.words.values()) == sorted(DRUM_CLASSES)
