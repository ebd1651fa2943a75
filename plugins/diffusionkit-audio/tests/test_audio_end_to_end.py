"""Tiny real audio runs through the command layer: train on drums or on a folder of the user's
files in mixed formats -> bundle -> generate / vary / convert / inpaint / extend / interpolate /
evaluate on the bundled example sounds."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from diffusionkit_audio.modality import GRID_GAP_SECONDS
from diffusionkit_audio.synth_drums import DRUM_CLASSES, synth_drum
from PIL import Image
from safetensors import safe_open

from diffusionkit.bundle import load_model
from diffusionkit.cli import main
from diffusionkit.commands import run_command

pytestmark = pytest.mark.slow

TINY = ["net=unet_small", "net.model_channels=16", "net.attention_levels=[]", "net.channel_mult=[1,2,2]",
        "data.batch_size=16", "trainer.max_steps=20", "trainer.val_check_interval=10",
        "trainer.limit_val_batches=1", "checkpoint.every_n_train_steps=10", "samples.every_n_steps=10",
        "samples.n=2", "samples.steps=2"]
EXAMPLES = Path(__file__).resolve().parents[1] / "diffusionkit_audio" / "examples"
KICK, SNARE = EXAMPLES / "kick.wav", EXAMPLES / "snare.wav"
#: 16 kHz, 1 s mel clips: [1, 64, 64], 63 hops of 256 samples
RATE, NUM_SAMPLES, FRAMES, HOP = 16000, 16128, 64, 256


@pytest.fixture(scope="module")
def drums_run(tmp_path_factory):
    """40 one-shots per class (not 8): evaluate holds out 15 % of them for its judge and scores
    ``vary`` on held-out items of every class; 9 held-out items of 64 leave classes empty."""
    run = tmp_path_factory.mktemp("drums") / "run"
    bundle = run_command("train", ["modality=audio", "data=drums", "data.dataset.per_class=40", *TINY,
                                   f"out={run}"])
    return run, bundle


def _wav(path: Path):
    info = sf.info(path)
    assert info.samplerate == RATE and info.subtype == "PCM_16"
    return info


def test_training_writes_bundle_samples_and_tensorboard_events(drums_run):
    run, bundle = drums_run
    assert bundle == run / "model.safetensors"
    with safe_open(str(bundle), framework="pt") as f:
        meta = f.metadata()
    assert json.loads(meta["classes"]) == list(DRUM_CLASSES)
    assert yaml.safe_load(meta["config"])["modality"]["codec"] == "mel"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert list((run / "tb").glob("events.out.tfevents.*"))
    for step in ("step_000010", "step_000020"):
        assert _wav(run / "samples" / f"{step}.wav").frames == 2 * (NUM_SAMPLES + int(GRID_GAP_SECONDS * RATE))
        assert Image.open(run / "samples" / f"{step}.png").mode == "RGB"


def test_generate_a_snare(drums_run, tmp_path):
    _, bundle = drums_run
    out = tmp_path / "gen"
    run_command("generate", [f"ckpt={bundle}", "label=snare", "n=2", "steps=3", f"out={out}"])
    assert sorted(p.name for p in out.iterdir()) == [
        "000_snare.png", "000_snare.wav", "001_snare.png", "001_snare.wav", "grid.png", "grid.wav", "recipe.yaml"]
    wave, rate = sf.read(out / "000_snare.wav")
    assert rate == RATE and wave.shape == (NUM_SAMPLES,) and np.isfinite(wave).all()
    assert _wav(out / "grid.wav").frames == 2 * (NUM_SAMPLES + int(GRID_GAP_SECONDS * RATE))
    assert yaml.safe_load((out / "recipe.yaml").read_text())["command"]["label"] == "snare"


def test_unknown_label_is_one_line_with_the_classes(drums_run, tmp_path, capsys):
    _, bundle = drums_run
    assert main(["generate", f"ckpt={bundle}", "label=bogus", f"out={tmp_path / 'x'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.endswith("unknown label 'bogus'; this model's classes: " + ", ".join(DRUM_CLASSES))


def test_edits_of_the_example_sounds(drums_run, tmp_path):
    _, bundle = drums_run
    common = [f"ckpt={bundle}", "n=2", "steps=2"]
    run_command("vary", [*common, f"input={KICK}", f"out={tmp_path / 'vary'}"])
    run_command("convert", [*common, f"input={KICK}", "target=snare", f"out={tmp_path / 'convert'}"])
    run_command("inpaint", [*common, f"input={SNARE}", f"out={tmp_path / 'inpaint'}"])
    run_command("extend", [*common, f"input={KICK}", "times=1", "context=0.5", f"out={tmp_path / 'extend'}"])
    run_command("interpolate", [*common, f"a={KICK}", f"b={SNARE}", "n=3", f"out={tmp_path / 'interpolate'}"])
    expected = {
        "vary": ["source", "variation_000", "variation_001", "grid"],
        "convert": ["source", "snare_000", "snare_001", "grid"],
        "inpaint": ["source", "inpainted_000", "inpainted_001", "grid"],
        "extend": ["source", "extended_000", "extended_001", "grid"],
        "interpolate": ["a", "b", "000_t0.00", "001_t0.50", "002_t1.00", "grid"],
    }
    for command, stems in expected.items():
        folder = tmp_path / command
        assert (folder / "recipe.yaml").is_file(), command
        for stem in stems:
            assert (folder / f"{stem}.wav").is_file() and (folder / f"{stem}.png").is_file(), (command, stem)
    for command, stem in (("vary", "variation_000"), ("convert", "snare_000"), ("inpaint", "inpainted_000"),
                          ("interpolate", "001_t0.50")):
        assert _wav(tmp_path / command / f"{stem}.wav").frames == NUM_SAMPLES
    # one window appended, continuing from the last half of the input: 64 + 1 * (64 - 32) frames
    keep = round(0.5 * FRAMES)
    assert _wav(tmp_path / "extend" / "extended_000.wav").frames == NUM_SAMPLES + 1 * (FRAMES - keep) * HOP


def test_media_options_at_sampling_time(drums_run, tmp_path):
    """output_rate=input answers the 44.1 kHz example at 44.1 kHz; the model space is unchanged."""
    _, bundle = drums_run
    run_command("vary", [f"ckpt={bundle}", "n=1", "steps=2", f"input={KICK}", "output_rate=input",
                         f"out={tmp_path / 'vary'}"])
    assert sf.info(tmp_path / "vary" / "variation_000.wav").samplerate == 44100


def test_evaluate_with_edit_scores(drums_run, tmp_path):
    _, bundle = drums_run
    out = tmp_path / "eval"
    report = run_command("evaluate", [
        f"ckpt={bundle}", "n_per_class=2", "classifier.epochs=1", "vary.strengths=[0.3]", "vary.sources_per_class=1",
        "vary.n=2", "convert.pairs=[[kick,snare]]", "convert.strengths=[0.6]", "convert.sources=2", "steps=4",
        f"out={out}"])
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved == report
    assert {"generated_accuracy", "frechet_distance", "vary", "convert"} <= set(saved)
    assert 0.0 <= saved["generated_accuracy"] <= 1.0 and np.isfinite(saved["frechet_distance"])
    assert [(row["label"], row["strength"]) for row in saved["vary"]] == [("auto", 0.3), ("given", 0.3)]
    (convert,) = saved["convert"]
    assert (convert["source"], convert["target"]) == ("kick", "snare")
    assert -1.0 <= convert["envelope_correlation"] <= 1.0


# --- the user's own files -------------------------------------------------------------------

#: (suffix, rate, channels, soundfile subtype): 16-bit stereo WAV at 44.1 kHz, mono FLAC at
#: 22.05 kHz, Ogg Vorbis at 48 kHz, AIFF at 8 kHz
FORMATS = [(".wav", 44100, 2, "PCM_16"), (".flac", 22050, 1, "PCM_16"), (".ogg", 48000, 1, "VORBIS"),
           (".aiff", 8000, 1, "PCM_16")]
FOLDER_CLASSES = {"kick": "kick", "snare": "snare", "hat": "closed_hat"}


def test_training_on_a_folder_of_mixed_formats(tmp_path, caplog):
    root = tmp_path / "sounds"
    for index, (folder, voice) in enumerate(FOLDER_CLASSES.items()):
        (root / folder).mkdir(parents=True)
        for i, (suffix, rate, channels, subtype) in enumerate(FORMATS):
            wave = synth_drum(voice, np.random.default_rng([index, i]), rate, int(0.8 * rate))
            data = np.stack([wave, 0.8 * wave], axis=1) if channels == 2 else wave
            sf.write(root / folder / f"{voice}_{i}{suffix}", data, rate, subtype=subtype)
    (root / "snare" / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(64)))
    for path in root.rglob("*.*"):
        if path.name != "corrupt.wav":
            assert sf.info(path).frames > 0  # every other file is readable audio

    with caplog.at_level(logging.WARNING):
        bundle = run_command("train", ["modality=audio", "data=folder", f"data.dataset.root={root}", *TINY,
                                       "trainer.max_steps=10", "data.batch_size=4", "samples.every_n_steps=10",
                                       f"out={tmp_path / 'run'}"])
    warned = [r.getMessage() for r in caplog.records if "corrupt.wav" in r.getMessage()]
    assert len(warned) == 1 and "\n" not in warned[0]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "skipping" in r.getMessage()
                and "corrupt.wav" not in r.getMessage()]
    assert load_model(bundle).classes == ["hat", "kick", "snare"]

    out = tmp_path / "vary"
    run_command("vary", [f"ckpt={bundle}", f"input={root / 'hat' / 'closed_hat_1.flac'}", "n=2", "steps=2",
                         "label=hat", f"out={out}"])
    assert _wav(out / "variation_001.wav").frames == NUM_SAMPLES
