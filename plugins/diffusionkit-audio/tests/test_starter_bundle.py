"""The shipped starter (v2): what its README promises about it, read from the file itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from diffusionkit.bundle import load_model
from diffusionkit.plugins import named_bundles

STARTER = named_bundles()["drums_starter"]
CLASSES = ["kick", "snare", "clap", "closed_hat", "open_hat", "tom", "crash", "rim"]
HELD_OUT = ["ColomboAcousticDrumkit", "HardElectro1", "rumpf_kit_z01_h2"]


@pytest.fixture(scope="module")
def metadata() -> dict[str, str]:
    with safe_open(str(STARTER), "pt") as bundle:
        return bundle.metadata()


def test_the_starter_is_small_enough_to_ship():
    assert STARTER.stat().st_size <= 30 * 2**20


def test_the_starter_carries_no_folder_of_the_machine_it_was_trained_on(metadata):
    config = metadata["config"]
    assert "\nout:" not in f"\n{config}" and "\nresume:" not in f"\n{config}"
    assert "/work/" not in config and "/root/" not in config and "/home/" not in config


def test_the_starter_learned_real_kits_at_44_1_khz_with_three_kits_held_out(metadata):
    model = load_model(STARTER)
    assert model.classes == CLASSES
    assert model.modality.sample_rate == 44100
    assert tuple(model.modality.shape) == (1, 96, 64)
    dataset = model.config.data.dataset
    assert dataset._target_ == "diffusionkit_audio.drumkits_dataset.DrumKitsDataset"
    assert dataset.split == "train" and list(dataset.test_kits) == HELD_OUT
    assert json.loads(metadata["classes"]) == CLASSES


def test_the_starter_names_inputs_by_a_recognizer_that_never_heard_the_held_out_kits(metadata):
    """It learned the starter's 10 training kits, the AVL SoundFont kits and 7 General MIDI kits."""
    spec = json.loads(metadata["recognizer"])
    assert spec["items"] == 504 and spec["epochs"] == 20 and spec["augment"] and spec["draws"] == 16
    assert len(spec["sources"]) == 19 and {"Red_Zeppelin_4_LV2", "GM_TR-808", "VariBreaks"} <= set(spec["sources"])
    assert not set(spec["sources"]) & set(HELD_OUT)
    assert load_model(STARTER).recognizer is not None


def test_the_starter_hears_a_file_from_its_sound_not_its_leading_silence(tmp_path):
    """Its training one-shots were aligned to their onset, so it reads a file the same way."""
    import numpy as np
    import soundfile as sf
    model = load_model(STARTER)
    rate = 44100
    time = np.arange(int(0.6 * rate)) / rate
    hit = (np.sin(2 * np.pi * 60 * time) * np.exp(-time / 0.15)).astype(np.float32)
    sf.write(tmp_path / "hit.wav", hit, rate)
    sf.write(tmp_path / "late.wav", np.concatenate([np.zeros(int(0.7 * rate), np.float32), hit]), rate)
    aligned, late = model.modality.load(tmp_path / "hit.wav"), model.modality.load(tmp_path / "late.wav")
    untrimmed = load_model(STARTER).with_media({"trim_silence": False}).modality.load(tmp_path / "late.wav")
    assert model.modality.trim_silence is True
    start = (..., slice(0, 20), slice(0, 10))  # the low mel bands of the first 10 frames: the hit
    assert float((aligned - late)[start].abs().mean()) < 0.1  # the same clip up to the 5 ms pre-roll (0.035)
    assert float((aligned - untrimmed)[start].abs().mean()) > 0.3  # read as it lies: silence there (0.50)
