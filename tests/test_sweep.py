"""``-m`` sweeps through Hydra's multirun: one folder per combination, every combination checked
before any job runs, and the SLURM launcher (the ``[cluster]`` extra) configured."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from diffusionkit.build import build_diffusion_model, build_modality
from diffusionkit.bundle import diffusion_weights, run_metadata, save_bundle
from diffusionkit.cli import main
from diffusionkit.config import compose_config
from diffusionkit.sweep import expand

TINY = ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16", "net.attention_levels=[]",
        "modality.channels=1"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An untrained tiny toy model (a bundle; its zero-initialised weights randomised, so that
    noise and strength change what it makes) and an input array."""
    folder = tmp_path_factory.mktemp("sweep_model")
    cfg = compose_config("train", TINY)
    torch.manual_seed(0)
    module = build_diffusion_model(cfg, build_modality(cfg), num_classes=10)
    with torch.no_grad():
        for p in module.ema.module.parameters():
            if not p.any():
                p.normal_(0.0, 0.05)
    bundle = save_bundle(folder / "model.safetensors", diffusion_weights(module), run_metadata(cfg, list("0123456789")))
    np.save(folder / "input.npy", (np.arange(32 * 32).reshape(1, 32, 32) % 251 / 125 - 1).astype(np.float32))
    return bundle, folder / "input.npy"


def sweep(tmp_path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diffusionkit.cli", *arguments], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)


def test_a_local_sweep_writes_one_folder_per_combination(model, tmp_path):
    bundle, picture = model
    result = sweep(tmp_path, "vary", f"ckpt={bundle}", f"input={picture}", "n=1", "steps=6", "label=null",
                   "-m", "seed=0,1", "strength=0.5,0.9")
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep_dir,) = (tmp_path / "outputs" / "vary").iterdir()
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    recipes = [yaml.safe_load((job / "recipe.yaml").read_text())["command"] for job in jobs]
    assert [(r["seed"], r["strength"]) for r in recipes] == [(0, 0.5), (0, 0.9), (1, 0.5), (1, 0.9)]
    made = [np.load(job / "variation_000.npy") for job in jobs]
    assert all(not np.array_equal(a, b) for i, a in enumerate(made) for b in made[i + 1:])  # each its own


def test_every_combination_is_checked_before_any_job_runs(model, tmp_path, capsys):
    bundle, _ = model
    assert main(["generate", f"ckpt={bundle}", "-m", "seed=0,1", "sampler=ddim,fast"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"diffusionkit generate: error: job 1 (ckpt={bundle} seed=0 sampler=fast): unknown sampler 'fast'; "
        "installed: ddim, ddpm, dpmpp_2m, euler, heun")
    assert main(["generate", f"ckpt={bundle}", "-m", "seed=0,1", f"out={tmp_path / 'same'}"]) == 2
    assert "jobs 0 and 1 would both write to out=" in capsys.readouterr().err
    assert not (tmp_path / "same").exists() and not (tmp_path / "outputs").exists()


def test_a_failing_job_is_one_line_and_the_others_still_run(model, tmp_path):
    bundle, _ = model
    result = sweep(tmp_path, "generate", f"ckpt={bundle}", "n=1", "steps=1", "-m", "label=3,snare")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("diffusionkit")]
    assert errors == [f"diffusionkit generate: error: job 1 (ckpt={bundle} n=1 steps=1 label=snare): unknown label "
                      "'snare'; this model's classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9",
                      "diffusionkit generate: 1 of 2 jobs failed"]
    (sweep_dir,) = (tmp_path / "outputs" / "generate").iterdir()
    assert (sweep_dir / "0" / "grid.npy").is_file()


def test_the_sweep_expands_like_hydras_basic_sweeper():
    assert expand(["a=1,2", "b=x", "c=3,4"]) == [["a=1", "b=x", "c=3"], ["a=1", "b=x", "c=4"],
                                                 ["a=2", "b=x", "c=3"], ["a=2", "b=x", "c=4"]]


def test_cfg_of_a_sweep_shows_its_first_job_and_the_folder_it_writes_to(capsys):
    assert main(["train", *TINY, "-m", "seed=0,1", "--cfg", "job"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["seed"] == 0
    assert main(["train", *TINY, "--multirun", "seed=3,1", "--cfg", "hydra"]) == 0
    hydra = yaml.safe_load(capsys.readouterr().out)
    assert re.fullmatch(r"outputs/train/\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", hydra["sweep"]["dir"])
    assert (hydra["mode"], hydra["output_subdir"]) == ("MULTIRUN", None) and "seed=3" in hydra["overrides"]["task"]


def test_the_slurm_launcher_composes_when_the_cluster_extra_is_installed(capsys):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = compose_config("train", ["modality=toy", "data=toy_blobs", "trainer=ddp", "trainer.num_nodes=2",
                                   "hydra/launcher=submitit_slurm", "hydra.launcher.nodes=2",
                                   "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4"],
                         hydra_node=True)
    assert cfg.hydra.launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (cfg.hydra.launcher.nodes, cfg.hydra.launcher.tasks_per_node, cfg.trainer.num_nodes) == (2, 4, 2)
    assert main(["generate", "ckpt=x", "hydra/launcher=submitit_slurm", "--cfg", "hydra"]) == 0
    assert "SlurmLauncher" in capsys.readouterr().out


@pytest.mark.slow
def test_jobs_run_in_other_processes_through_submitit(model, tmp_path):
    """submitit's local executor: the same pickling and job set-up as on SLURM, without SLURM."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    bundle, _ = model
    result = sweep(tmp_path, "generate", f"ckpt={bundle}", "n=1", "steps=1", "hydra/launcher=submitit_local",
                   "-m", "seed=0,1")
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep_dir,) = (tmp_path / "outputs" / "generate").iterdir()
    assert all((sweep_dir / job / "grid.npy").is_file() for job in ("0", "1"))
    assert yaml.safe_load((sweep_dir / "1" / "recipe.yaml").read_text())["command"]["seed"] == 1
