"""Packaging and configs: a light top-level import, the entry point, and the Hydra configs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

from hydra.utils import instantiate

from diffusionkit.modality import Modality

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "diffusionkit_video" / "conf"


def test_top_level_import_does_not_load_torch_or_pyav():
    code = "import sys, diffusionkit_video as d; print(d.__version__, 'torch' in sys.modules, 'av' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[1:] == ["False", "False"]


def test_entry_point_names_the_video_modality():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    module, name = project["entry-points"]["diffusionkit.plugins"]["video"].split(":")
    cls = getattr(import_module(module), name)
    assert issubclass(cls, Modality) and cls.__name__ == "VideoModality"
    for config in ("modality/video", "data/sprites", "data/moving_digits", "experiment/sprites_fast"):
        assert (CONF / f"{config}.yaml").is_file()
    for config in ("data/sprites", "data/moving_digits", "experiment/sprites_fast"):
        assert (CONF / f"{config}.yaml").read_text().splitlines()[0] == "# @package _global_"


def test_train_config_composes_with_the_experiment():
    from diffusionkit.config import compose_config

    cfg = compose_config("train", ["modality=video", "data=sprites", "experiment=sprites_fast",
                                   "data.dataset.per_class=1"])
    assert cfg.modality.channels == 1 and cfg.trainer.max_steps == 1500 and cfg.data.batch_size == 16
    assert list(cfg.net.channel_mult) == [1, 2, 2] and list(cfg.net.attention_levels) == [2]
    assert list(cfg.net.patch_size) == [1, 2, 2] and cfg.diffusion.schedule.snr_shift == 2.0
    assert cfg.diffusion.prediction == "x0" and cfg.sampler.spacing == "karras"
    assert cfg.samples.n == 4 and cfg.samples.every_n_steps == 400
    modality, dataset = instantiate(cfg.modality), instantiate(cfg.data.dataset)
    assert len(dataset) == 4 and dataset[0]["x"].shape == modality.shape == (1, 16, 32, 32)
    digits = compose_config("train", ["modality=video", "data=moving_digits", "data.dataset.per_class=1"])
    assert instantiate(digits.data.dataset)[3]["x"].shape == (1, 16, 32, 32)


def test_sprites_dit_is_the_same_recipe_with_a_transformer_over_space_time_patches():
    import torch

    from diffusionkit.build import build_diffusion_model, build_modality
    from diffusionkit.config import compose_config

    fast = compose_config("train", ["modality=video", "data=sprites", "experiment=sprites_fast"])
    dit = compose_config("train", ["modality=video", "data=sprites", "experiment=sprites_dit"])
    assert dit.net._target_ == "diffusionkit.nets.dit.DiT" and list(dit.net.patch_size) == [2, 4, 4]
    assert dit.diffusion == fast.diffusion and dit.optim.optimizer == fast.optim.optimizer
    assert dit.trainer.max_steps == 1900 and (dit.net.hidden_size, dit.net.num_heads) == (96, 3)
    assert dit.net.long_skips and dit.net.final_conv  # U-ViT's parts
    modality = build_modality(dit)
    model = build_diffusion_model(dit, modality, num_classes=4)
    dit_net = next(m for m in model.net.modules() if type(m).__name__ == "DiT")
    assert len(dit_net.skip_joins) == 2 and isinstance(dit_net.final_conv, torch.nn.Conv3d)
    out = model.net(torch.zeros(2, *modality.shape), torch.tensor([10, 20]), label=torch.tensor([0, 1]))
    assert out.shape == (2, *modality.shape)
