"""Tiny real runs through the command layer: train -> bundle/checkpoint -> generate/evaluate."""

import json

import pytest
import torch
import yaml
from PIL import Image
from safetensors import safe_open

from diffusionkit.bundle import file_sha256
from diffusionkit.cli import main
from diffusionkit.commands import run_command

pytestmark = pytest.mark.slow

TINY = ["net=unet_small", "net.model_channels=16", "net.attention_levels=[]", "data.batch_size=16",
        "trainer.max_steps=30", "trainer.val_check_interval=15", "trainer.limit_val_batches=1",
        "checkpoint.every_n_train_steps=15", "samples.every_n_steps=15", "samples.n=4", "samples.steps=2"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("digits") / "run"
    bundle = run_command("train", ["modality=image", "data=digits", *TINY, f"out={run}", "seed=3"])
    return run, bundle


def test_training_writes_bundle_config_checkpoints_samples_and_logs(digits_run):
    run, bundle = digits_run
    assert bundle == run / "model.safetensors"
    with safe_open(str(bundle), framework="pt") as f:
        meta = f.metadata()
    assert json.loads(meta["classes"]) == [str(i) for i in range(10)]
    assert yaml.safe_load(meta["config"])["seed"] == 3
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["max_steps"] == 30
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert Image.open(run / "samples" / "step_000030.png").size[0] >= 32
    assert list((run / "tb").glob("events.out.tfevents.*"))


def test_generate_writes_pngs_grid_and_recipe(digits_run, tmp_path):
    _, bundle = digits_run
    out = tmp_path / "gen"
    run_command("generate", [f"ckpt={bundle}", "n=3", "label=7", "steps=3", f"out={out}", "seed=5"])
    assert sorted(p.name for p in out.glob("*.png")) == ["000_7.png", "001_7.png", "002_7.png", "grid.png"]
    assert Image.open(out / "000_7.png").size == (32, 32)
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["seed"] == 5 and recipe["command"]["label"] == 7
    assert recipe["checkpoint"]["sha256"] == file_sha256(bundle)


def test_lightning_checkpoint_and_bundle_give_the_same_samples(digits_run, tmp_path):
    run, bundle = digits_run
    for name, ckpt in (("a", bundle), ("b", run / "checkpoints" / "last.ckpt")):
        run_command("generate", [f"ckpt={ckpt}", "n=2", "steps=3", f"out={tmp_path / name}", "sampler=ddim"])
    a = torch.tensor(list(Image.open(tmp_path / "a" / "grid.png").getdata()))
    b = torch.tensor(list(Image.open(tmp_path / "b" / "grid.png").getdata()))
    assert torch.equal(a, b)


def test_resume_continues_the_step_count(digits_run, tmp_path):
    run, _ = digits_run
    last = run / "checkpoints" / "last.ckpt"
    before = torch.load(last, weights_only=True)["global_step"]
    (tmp_path / "resume_run" / "checkpoints").mkdir(parents=True)
    start = tmp_path / "resume_run" / "checkpoints" / "last.ckpt"
    start.write_bytes(last.read_bytes())
    run_command("train", ["modality=image", "data=digits", *TINY, "trainer.max_steps=40", f"resume={start}"])
    after = torch.load(tmp_path / "resume_run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert (before, after) == (30, 40)
    assert (tmp_path / "resume_run" / "model.safetensors").is_file()


def test_resume_from_a_loose_checkpoint_writes_to_out_never_beside_it(digits_run, tmp_path, capsys):
    run, _ = digits_run
    loose = tmp_path / "saved" / "step30.ckpt"
    loose.parent.mkdir()
    loose.write_bytes((run / "checkpoints" / "last.ckpt").read_bytes())
    run_command("train", ["modality=image", "data=digits", *TINY, "trainer.max_steps=32", f"resume={loose}",
                          f"out={tmp_path / 'continued'}"])
    assert (tmp_path / "continued" / "model.safetensors").is_file()
    assert main(["train", "modality=image", "data=digits", *TINY, "trainer.max_steps=32", f"resume={loose}"]) == 2
    assert "is not in a run's checkpoints/ folder, so it names no run to continue in; give out=<new folder>" in \
        capsys.readouterr().err
    assert [p.name for p in (tmp_path / "saved").iterdir()] == ["step30.ckpt"]


def test_existing_outputs_are_never_overwritten(digits_run, capsys):
    run, bundle = digits_run
    before = bundle.read_bytes()
    assert main(["train", "modality=image", "data=digits", *TINY, f"out={run}"]) == 2
    assert "is not empty; choose a new out=" in capsys.readouterr().err
    assert bundle.read_bytes() == before


def test_unknown_label_lists_the_classes(digits_run, capsys, tmp_path):
    _, bundle = digits_run
    assert main(["generate", f"ckpt={bundle}", "label=snare", f"out={tmp_path / 'x'}"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "unknown label 'snare'; this model's classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9")


def test_evaluate_reports_accuracy_per_class(digits_run, tmp_path):
    _, bundle = digits_run
    report = run_command("evaluate", [f"ckpt={bundle}", "n_per_class=2", "steps=2", "classifier.epochs=1",
                                      f"out={tmp_path / 'eval'}"])
    assert set(report["per_class"]) == {str(i) for i in range(10)}
    assert 0.0 <= report["generated_accuracy"] <= 1.0
    assert report["real_heldout_accuracy"] > 0.3  # one epoch already beats chance (0.1) by far
    assert json.loads((tmp_path / "eval" / "evaluation.json").read_text()) == report


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
