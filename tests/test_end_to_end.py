"""Tiny real runs through the command layer: train -> bundle/checkpoint -> generate/evaluate."""

import json

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open

from diffusionkit.bundle import file_sha256
from diffusionkit.cli import main
from diffusionkit.commands import run_command

pytestmark = pytest.mark.slow

TINY = ["net=unet_small", "net.model_channels=16", "net.attention_levels=[]", "data.batch_size=16",
        "trainer.max_steps=30", "trainer.val_check_interval=15", "trainer.limit_val_batches=1",
        "checkpoint.every_n_train_steps=15", "samples.every_n_steps=15", "samples.n=4", "samples.steps=2"]
TOY = ["modality=toy", "data=toy_blobs", "data.dataset.num_samples=640"]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("toy") / "run"
    bundle = run_command("train", [*TOY, *TINY, f"out={run}", "seed=3"])
    return run, bundle


def test_training_writes_bundle_config_checkpoints_samples_and_logs(toy_run):
    run, bundle = toy_run
    assert bundle == run / "model.safetensors"
    with safe_open(str(bundle), framework="pt") as f:
        meta = f.metadata()
    assert json.loads(meta["classes"]) == [str(i) for i in range(10)]
    assert yaml.safe_load(meta["config"])["seed"] == 3
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["max_steps"] == 30
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert np.load(run / "samples" / "step_000030.npy").shape == (4, 1, 32, 32)
    assert list((run / "tb").glob("events.out.tfevents.*"))


def test_generate_writes_items_grid_and_recipe(toy_run, tmp_path):
    _, bundle = toy_run
    out = tmp_path / "gen"
    run_command("generate", [f"ckpt={bundle}", "n=3", "label=7", "steps=3", f"out={out}", "seed=5"])
    assert sorted(p.name for p in out.glob("*.npy")) == ["000_7.npy", "001_7.npy", "002_7.npy", "grid.npy"]
    assert np.load(out / "000_7.npy").shape == (1, 32, 32)
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["seed"] == 5 and recipe["command"]["label"] == 7
    assert recipe["checkpoint"]["sha256"] == file_sha256(bundle)


def test_lightning_checkpoint_and_bundle_give_the_same_samples(toy_run, tmp_path):
    run, bundle = toy_run
    for name, ckpt in (("a", bundle), ("b", run / "checkpoints" / "last.ckpt")):
        run_command("generate", [f"ckpt={ckpt}", "n=2", "steps=3", f"out={tmp_path / name}", "sampler=ddim"])
    a, b = (np.load(tmp_path / name / "grid.npy") for name in ("a", "b"))
    assert np.array_equal(a, b)


def test_resume_continues_the_step_count(toy_run, tmp_path):
    run, _ = toy_run
    last = run / "checkpoints" / "last.ckpt"
    before = torch.load(last, weights_only=True)["global_step"]
    (tmp_path / "resume_run" / "checkpoints").mkdir(parents=True)
    start = tmp_path / "resume_run" / "checkpoints" / "last.ckpt"
    start.write_bytes(last.read_bytes())
    run_command("train", [*TOY, *TINY, "trainer.max_steps=40", f"resume={start}"])
    after = torch.load(tmp_path / "resume_run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert (before, after) == (30, 40)
    assert (tmp_path / "resume_run" / "model.safetensors").is_file()


def test_resume_from_a_loose_checkpoint_writes_to_out_never_beside_it(toy_run, tmp_path, capsys):
    run, _ = toy_run
    loose = tmp_path / "saved" / "step30.ckpt"
    loose.parent.mkdir()
    loose.write_bytes((run / "checkpoints" / "last.ckpt").read_bytes())
    run_command("train", [*TOY, *TINY, "trainer.max_steps=32", f"resume={loose}",
                          f"out={tmp_path / 'continued'}"])
    assert (tmp_path / "continued" / "model.safetensors").is_file()
    assert main(["train", *TOY, *TINY, "trainer.max_steps=32", f"resume={loose}"]) == 2
    assert "is not in a run's checkpoints/ folder, so it names no run to continue in; give out=<new folder>" in \
        capsys.readouterr().err
    assert [p.name for p in (tmp_path / "saved").iterdir()] == ["step30.ckpt"]


def test_existing_outputs_are_never_overwritten(toy_run, capsys):
    run, bundle = toy_run
    before = bundle.read_bytes()
    assert main(["train", *TOY, *TINY, f"out={run}"]) == 2
    assert "is not empty; choose a new out=" in capsys.readouterr().err
    assert bundle.read_bytes() == before


def test_unknown_label_lists_the_classes(toy_run, capsys, tmp_path):
    _, bundle = toy_run
    assert main(["generate", f"ckpt={bundle}", "label=snare", f"out={tmp_path / 'x'}"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "unknown label 'snare'; this model's classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9")


def test_evaluate_reports_accuracy_per_class(toy_run, tmp_path):
    _, bundle = toy_run
    report = run_command("evaluate", [f"ckpt={bundle}", "n_per_class=2", "steps=2", "classifier.epochs=1",
                                      f"out={tmp_path / 'eval'}"])
    assert set(report["per_class"]) == {str(i) for i in range(10)}
    assert 0.0 <= report["generated_accuracy"] <= 1.0
    assert report["real_heldout_accuracy"] > 0.3  # one epoch already beats chance (0.1) by far
    real = [a for a in report["real_per_class"].values() if a is not None]  # None: no held-out item of that class
    assert set(report["real_per_class"]) == set(report["per_class"]) and real
    assert min(real) >= 0.0 and max(real) <= 1.0
    assert json.loads((tmp_path / "eval" / "evaluation.json").read_text()) == report

