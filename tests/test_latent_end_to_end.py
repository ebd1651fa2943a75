"""The two stages of latent diffusion through the command layer (tiny real runs)."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from diffusionkit.cli import main
from diffusionkit.commands import run_command

pytestmark = pytest.mark.slow

TINY_AE = ["stage=autoencoder", "first_stage.net.base_channels=8", "first_stage.net.latent_channels=2",
           "data.batch_size=16", "trainer.max_steps=6", "trainer.val_check_interval=3",
           "trainer.limit_val_batches=1", "samples.every_n_steps=3", "samples.n=2"]
TINY_DIFFUSION = ["net=unet_small", "net.model_channels=16", "net.channel_mult=[1,2]", "net.attention_levels=[]",
                  "data.batch_size=16", "trainer.max_steps=4", "trainer.val_check_interval=2",
                  "trainer.limit_val_batches=1", "samples.every_n_steps=2", "samples.n=2", "samples.steps=2"]


def metadata(path):
    with safe_open(str(path), framework="pt") as f:
        return f.metadata(), set(f.keys())


@pytest.fixture(scope="module")
def first_stage(tmp_path_factory):
    run = tmp_path_factory.mktemp("ae") / "run"
    return run_command("train", ["modality=toy", "data=toy_blobs", *TINY_AE, f"out={run}"])


def test_autoencoder_stage_writes_a_bundle_with_its_scale_factor(first_stage):
    meta, keys = metadata(first_stage)
    assert first_stage.name == "autoencoder.safetensors" and meta["kind"] == "autoencoder"
    assert float(meta["scale_factor"]) > 0 and float(meta["held_out_psnr_db"]) > 0
    assert all(k.startswith("autoencoder.") for k in keys)
    grid = np.load(first_stage.parent / "reconstructions" / "step_000006.npy")
    assert grid.shape[0] >= 2 and grid.shape[0] % 2 == 0  # originals, then as many reconstructions


@pytest.mark.parametrize("cache", [False, True])
def test_latent_diffusion_trains_on_frozen_latents_and_generates_data(first_stage, tmp_path, cache):
    run = tmp_path / "run"
    bundle = run_command("train", ["modality=toy", "data=toy_blobs", "autoencoder=pretrained",
                                   f"autoencoder.bundle={first_stage}", f"autoencoder.cache_latents={cache}",
                                   *TINY_DIFFUSION, f"out={run}"])
    meta, keys = metadata(bundle)
    config = json.loads(json.dumps(__import__("yaml").safe_load(meta["config"])))
    assert config["autoencoder"]["scale_factor"] == pytest.approx(float(metadata(first_stage)[0]["scale_factor"]))
    assert config["diffusion"]["clip_denoised"] is None
    assert {"latent.scale_factor"} <= keys and any(k.startswith("latent.autoencoder.") for k in keys)
    assert (run / "latents.safetensors").is_file() == cache
    if cache:
        with safe_open(str(run / "latents.safetensors"), framework="pt") as f:
            assert tuple(f.get_tensor("z").shape[1:]) == (2, 8, 8)  # 32x32 items at f=4, 2 channels
    out = tmp_path / "gen"
    run_command("generate", [f"ckpt={bundle}", "n=2", "steps=2", "label=4", f"out={out}"])
    assert np.load(out / "000_4.npy").shape == (1, 32, 32)


def test_generate_refuses_an_autoencoder_bundle(first_stage, tmp_path, capsys):
    assert main(["generate", f"ckpt={first_stage}", f"out={tmp_path / 'x'}"]) == 2
    err = capsys.readouterr().err
    assert "holds an autoencoder model where a diffusion model is needed" in err
    assert "autoencoder=pretrained autoencoder.bundle=<this file>" in err


def test_a_latent_cache_from_another_autoencoder_is_refused(first_stage, tmp_path, capsys):
    cache = tmp_path / "latents.safetensors"
    from safetensors.torch import save_file

    save_file({"z": torch.zeros(1, 2, 8, 8), "labels": torch.zeros(1)}, str(cache),
              metadata={"key": "other", "classes": "[]"})
    args = ["train", "modality=toy", "data=toy_blobs", "autoencoder=pretrained", f"autoencoder.bundle={first_stage}",
            "autoencoder.cache_latents=true", f"autoencoder.cache_path={cache}", *TINY_DIFFUSION,
            f"out={tmp_path / 'run'}"]
    assert main(args) == 2
    assert "was made from another autoencoder or dataset" in capsys.readouterr().err
