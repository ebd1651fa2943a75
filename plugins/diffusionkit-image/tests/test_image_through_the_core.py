"""The core's commands and config machinery with the image plugin's own configs, transforms and
conditions (moved here from the core's tests, which run against the test-only toy plugin)."""

import json

import pytest
from omegaconf import OmegaConf
from PIL import Image
from safetensors import safe_open

from diffusionkit.cli import main
from diffusionkit.commands import run_command
from diffusionkit.config import compose_config

TINY = ["net=unet_small", "net.model_channels=16", "net.attention_levels=[]", "data.batch_size=16",
        "trainer.max_steps=30", "trainer.val_check_interval=15", "trainer.limit_val_batches=1",
        "checkpoint.every_n_train_steps=15", "samples.every_n_steps=15", "samples.n=4", "samples.steps=2"]


def test_plugin_configs_join_the_search_path():
    cfg = compose_config("train", ["modality=image", "data=shapes", "cond=sketch"])
    assert cfg.modality._target_ == "diffusionkit_image.modality.ImageModality"
    assert cfg.modality.channels == 3
    assert cfg.cond._target_ == "diffusionkit_image.sketch.SketchCondition"
    assert compose_config("train", ["modality=image", "data=digits"]).modality.channels == 1


def test_plugins_list_shows_name_version_modality_and_options(capsys):
    assert main(["plugins", "list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("image"))
    assert "0.1.0" in row and "diffusionkit_image.modality:ImageModality" in row
    assert "data: digits, shapes" in row and "modality: image" in row and "cond: sketch" in row


@pytest.mark.slow
def test_train_with_augment_records_it_and_refuses_unknown_names(tmp_path, capsys):
    tiny = ["train", "modality=image", "data=digits", "net=unet_small", "net.model_channels=16",
            "net.attention_levels=[]", "modality.channels=1", "modality.size=16", "trainer.max_steps=2",
            "logger=none", "samples.every_n_steps=100"]
    assert main([*tiny, "augment=default", "augment.transforms=[crop,jitter]", f"out={tmp_path / 'run'}"]) == 0
    recorded = OmegaConf.load(tmp_path / "run" / "config.yaml").augment
    assert list(recorded.transforms) == ["crop", "jitter"] and recorded.p == 0.5
    capsys.readouterr()
    assert main([*tiny, "augment=default", "augment.transforms=[spin]", f"out={tmp_path / 'bad'}"]) == 2
    assert "augment.transforms: ImageModality offers no transform 'spin'; it offers: flip, crop, jitter" in \
        capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_sketch_conditioned_model_draws_from_a_sketch(tmp_path, capsys):
    bundle = run_command("train", ["modality=image", "data=shapes", "data.dataset.num_samples=64", "cond=sketch",
                                   *TINY, "trainer.max_steps=4", f"out={tmp_path / 'run'}"])
    sketch = Image.new("L", (32, 32), 255)
    sketch.paste(0, (8, 8, 24, 9))
    sketch.save(tmp_path / "sketch.png")
    run_command("generate", [f"ckpt={bundle}", "n=2", "steps=2", f"sketch={tmp_path / 'sketch.png'}",
                             f"out={tmp_path / 'gen'}"])
    assert (tmp_path / "gen" / "grid.png").is_file() and len(list((tmp_path / "gen").glob("00*.png"))) == 2
    assert main(["generate", f"ckpt={bundle}", f"out={tmp_path / 'gen2'}"]) == 2
    assert "pass sketch=FILE" in capsys.readouterr().err


@pytest.mark.slow
def test_training_on_a_folder_of_the_users_images(tmp_path, caplog):
    root = tmp_path / "pictures"
    for cls, colour in (("logos", (200, 30, 30)), ("icons", (20, 20, 220))):
        (root / cls).mkdir(parents=True)
        for i, mode in enumerate(("RGB", "RGBA", "P", "L")):
            Image.new("RGB", (40 + i, 30), colour).convert(mode).save(root / cls / f"{i}.png")
    (root / "icons" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    bundle = run_command("train", ["modality=image", "data=folder", f"data.dataset.root={root}", *TINY,
                                   "trainer.max_steps=2", "data.batch_size=4", f"out={tmp_path / 'run'}"])
    with safe_open(str(bundle), framework="pt") as f:
        assert json.loads(f.metadata()["classes"]) == ["icons", "logos"]
    assert "broken.png" in caplog.text
