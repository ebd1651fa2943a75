"""Cascades (Ho et al. 2022; Imagen): the low-resolution condition with noise conditioning
augmentation, stage=upsampler, and a base + upsampler sampled, edited and recorded as one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from diffusionkit.diffusion.cascade import Cascade
from diffusionkit.diffusion.model import DiffusionModel
from diffusionkit.diffusion.schedules import NoiseSchedule
from diffusionkit.nets.conditioners import ClassLabel
from diffusionkit.nets.low_resolution import LowResolution, augment
from diffusionkit.nets.resampling import downsample, resize
from diffusionkit.nets.unet import UNet


def test_downsample_averages_blocks_per_axis_and_resize_restores_the_size():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    low = downsample(x, (2, 2))
    assert low.tolist() == [[[[2.5, 4.5], [10.5, 12.5]]]]
    clip = torch.randn(2, 3, 4, 8, 8)
    assert downsample(clip, (1, 2, 2)).shape == (2, 3, 4, 4, 4)
    assert resize(downsample(clip, (1, 2, 2)), (4, 8, 8)).shape == clip.shape
    with pytest.raises(ValueError, match=r"spatial sizes \[4, 6\] are not multiples of the factors \[4, 4\]"):
        downsample(torch.zeros(1, 1, 4, 6), (4, 4))


def test_augmentation_keeps_the_item_at_level_0_and_replaces_it_by_noise_at_level_1():
    x = torch.ones(2, 1, 8, 8)
    assert torch.equal(augment(x, torch.zeros(2)), x)
    noised = augment(x, torch.ones(2), torch.Generator().manual_seed(0))
    assert abs(float(noised.mean())) < 0.3 and 0.7 < float(noised.std()) < 1.3


def low_resolution(**kw) -> LowResolution:
    condition = LowResolution(channels=1, **kw)
    condition.name = "low_res"
    condition.bind(32)
    return condition


def test_training_values_are_the_degraded_item_resized_up_with_its_level_as_a_last_channel():
    torch.manual_seed(0)
    condition = low_resolution(factor=2, max_augment=0.0)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    values = condition.from_batch({"x": x})
    assert values.shape == (1, 2, 4, 4)
    torch.testing.assert_close(values[:, :1], resize(downsample(x, (2, 2)), (4, 4)))
    assert values[:, 1].unique().tolist() == [0.0]
    levels = low_resolution(max_augment=0.5).from_batch({"x": torch.zeros(64, 1, 4, 4)})[:, 1, 0, 0]
    assert 0.0 <= float(levels.min()) and float(levels.max()) <= 0.5 and float(levels.std()) > 0.05
    assert condition(values).shape == (1, 1, 4, 4)
    assert float(condition.pooled(values).detach().abs().max()) == 0.0  # the level's embedding starts at zero


def test_sampling_values_carry_the_sample_level_and_an_always_given_condition_has_no_null():
    condition = low_resolution(sample_augment=0.2)
    values = condition.from_low_resolution(torch.zeros(3, 1, 4, 4), (8, 8))
    assert values.shape == (3, 2, 8, 8) and torch.allclose(values[:, 1], torch.full((3, 8, 8), 0.2))
    with pytest.raises(ValueError, match="super-resolution stage trained with its low_res always given"):
        condition.null_value(1, (1, 8, 8), torch.device("cpu"))
    with pytest.raises(ValueError, match=r"max_augment must lie in \[0, 1\], got 2"):
        LowResolution(1, max_augment=2)


def tiny(size: int, upsampler: bool = False, factor: int = 2) -> DiffusionModel:
    conditioners = {"label": ClassLabel(2)}
    if upsampler:
        conditioners["low_res"] = LowResolution(1, factor=factor)
    net = UNet(2, 1, model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(),
               concat_channels=1 if upsampler else 0)
    return DiffusionModel(net, NoiseSchedule("linear"), (1, size, size), conditioners=conditioners).eval()


def test_a_cascade_checks_its_stages_fit():
    with pytest.raises(ValueError, match="stage 2 of the cascade is no super-resolution stage"):
        Cascade([tiny(8), tiny(16)])
    with pytest.raises(ValueError, match=r"stage 2 upsamples \[1, 4, 4\] items by \[4, 4\], but stage 1 makes \[1, 8, 8\]"):
        Cascade([tiny(8), tiny(16, upsampler=True, factor=4)])
    with pytest.raises(ValueError, match="needs a base and at least one upsampler"):
        Cascade([tiny(8)])


def test_a_cascade_samples_at_the_last_stage_each_stage_conditioned_on_the_one_before(monkeypatch):
    torch.manual_seed(0)
    base, up = tiny(8), tiny(16, upsampler=True)
    cascade = Cascade([base, up])
    seen = {}
    original = up.sample

    def spy(n, labels=None, **kw):
        seen.update(kw["conditions"], labels=labels, init=kw["init"], mask=kw["mask"])
        return original(n, labels, **kw)

    monkeypatch.setattr(up, "sample", spy)
    labels = torch.tensor([0, 1])
    out = cascade.sample(2, labels, steps=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 1, 16, 16) and seen["low_res"].shape == (2, 2, 16, 16)
    assert torch.equal(seen["labels"], labels) and seen["init"] is None
    source = torch.randn(2, 1, 16, 16)
    cascade.sample(2, labels, steps=2, init=source, strength=0.5)
    assert torch.equal(seen["init"], source)
    assert cascade.at_stage(source, 0).shape == (2, 1, 8, 8)  # the base edits the coarse version
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., :8] = 1.0  # keep the left half
    seen_base = {}
    base_sample = base.sample

    def spy_base(n, labels=None, **kw):
        seen_base.update(known=kw["known"], mask=kw["mask"])
        return base_sample(n, labels, **kw)

    monkeypatch.setattr(base, "sample", spy_base)
    cascade.sample(2, labels, steps=2, known=source, mask=mask)
    assert seen_base["known"].shape == (2, 1, 8, 8) and seen_base["mask"][..., :4].min() == 1
    assert seen_base["mask"][..., 4:].max() == 0 and torch.equal(seen["mask"], mask)
    with pytest.raises(ValueError, match="cannot start from inverted noise"):
        cascade.sample(2, labels, noise=torch.zeros(2, 1, 8, 8))


# --- end to end: stage=upsampler, generate/vary ckpt=BASE,UPSAMPLER -------------------------------
TOY = ["modality=toy", "data=toy_blobs", "data.dataset.num_classes=2", "data.dataset.num_samples=128",
       "net=unet_small", "net.model_channels=16", "net.channel_mult=[1,2]", "net.attention_levels=[]",
       "trainer.max_steps=150", "optim.optimizer.lr=3e-3", "logger=none", "samples.every_n_steps=1000",
       "checkpoint.every_n_train_steps=1000"]


@pytest.fixture(scope="module")
def cascade_bundles(tmp_path_factory):
    from diffusionkit.commands import run_command

    root = tmp_path_factory.mktemp("cascade")
    base = run_command("train", [*TOY, "modality.spatial_size=[8,8]", f"out={root / 'base'}"])
    up = run_command("train", [*TOY, "modality.spatial_size=[16,16]", "stage=upsampler", f"out={root / 'up'}"])
    return base, up


@pytest.mark.slow
def test_generate_through_a_cascade_keeps_the_class_and_records_every_stage(cascade_bundles, tmp_path):
    from diffusionkit.bundle import file_sha256
    from diffusionkit.commands import run_command

    base, up = cascade_bundles
    means = {}
    for label in (0, 1):
        out = tmp_path / f"gen{label}"
        run_command("generate", [f"ckpt={base},{up}", f"label={label}", "n=6", "steps=10", "seed=0", f"out={out}"])
        grid = np.load(out / "grid.npy")
        means[label] = float(grid.mean())
        assert np.load(out / f"000_{label}.npy").shape == (1, 16, 16)
    assert means[1] - means[0] > 0.5, means  # class c of toy_blobs is a level c
    recipe = yaml.safe_load((tmp_path / "gen1" / "recipe.yaml").read_text())
    assert [s["sha256"] for s in recipe["cascade"]] == [file_sha256(base), file_sha256(up)]
    assert recipe["cascade"][1]["model_config"]["conditioners"]["low_res"]["factor"] == 2


@pytest.mark.slow
def test_vary_through_a_cascade_and_one_line_errors(cascade_bundles, tmp_path, capsys):
    from diffusionkit.cli import main

    base, up = cascade_bundles
    source = tmp_path / "source.npy"
    np.save(source, np.full((1, 16, 16), 1.0, dtype=np.float32))
    assert main(["vary", f"ckpt=[{base},{up}]", f"input={source}", "strength=0.3", "n=2", "steps=10",
                 f"out={tmp_path / 'vary'}"]) == 0  # the list form of ckpt=BASE,UPSAMPLER
    varied = sorted((tmp_path / "vary").glob("variation_*.npy"))
    assert len(varied) == 2 and np.load(varied[0]).shape == (1, 16, 16)
    assert main(["generate", f"ckpt={up},{base}", f"out={tmp_path / 'bad'}"]) == 2
    assert "the first stage of a cascade is an upsampler" in capsys.readouterr().err
    assert main(["generate", "ckpt=[]", f"out={tmp_path / 'none'}"]) == 2
    assert "ckpt=[]: the list is empty" in capsys.readouterr().err
    assert main(["generate", f"ckpt={up}", f"out={tmp_path / 'alone'}"]) == 2
    assert "this model is conditioned on a low_res: pass low_res=FILE" in capsys.readouterr().err
    assert main(["generate", f"ckpt={up}", f"low_res={source}", "n=2", "steps=5", f"out={tmp_path / 'file'}"]) == 0


def test_stage_upsampler_adds_its_condition_and_refuses_a_config_without_one(tmp_path):
    from diffusionkit.apps import train
    from diffusionkit.config import compose_config
    from diffusionkit.errors import UsageError

    cfg = compose_config("train", [*TOY, "stage=upsampler", "conditioners.low_res.factor=4"])
    assert cfg.conditioners.low_res._target_ == "diffusionkit.nets.low_resolution.LowResolution"
    assert cfg.conditioners.low_res.factor == 4
    cfg = compose_config("train", [*TOY, f"out={tmp_path / 'x'}"])
    cfg.stage = "upsampler"  # as an experiment file could set it
    with pytest.raises(UsageError, match="stage=upsampler trains on a low-resolution condition"):
        train.run(cfg)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_evaluate_judges_an_upsampler_on_real_held_out_items_and_a_cascade_like_one_model(cascade_bundles, tmp_path):
    from diffusionkit.commands import run_command

    base, up = cascade_bundles
    report = run_command("evaluate", [f"ckpt={up}", "n_per_class=4", "steps=5", "classifier.epochs=2",
                                      f"out={tmp_path / 'up'}"])
    scores = report["upsampler"]
    assert scores["items"] == 8 and scores["factors"] == [2, 2]
    assert scores["class_kept"] >= 0.75 and scores["class_kept_originals"] >= 0.75  # levels: easy to keep
    report = run_command("evaluate", [f"ckpt={base},{up}", "n_per_class=4", "steps=5", "classifier.epochs=2",
                                      "vary.strengths=[]", f"out={tmp_path / 'cascade'}"])
    assert set(report["per_class"]) == {"0", "1"} and report["generated_accuracy"] >= 0.75


@pytest.mark.slow
def test_a_cascade_bundle_samples_as_its_stages_do_and_is_checked_stage_by_stage(cascade_bundles, tmp_path, capsys):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    from diffusionkit.cli import main

    base, up = cascade_bundles
    assert main(["cascade", f"ckpt={base},{up}", f"out={tmp_path / 'pack'}"]) == 0
    packed = tmp_path / "pack" / "cascade.safetensors"
    assert "2 stages (1x8x8 -> 1x16x16)" in capsys.readouterr().out
    for name, ckpt in (("a", f"ckpt={base},{up}"), ("b", f"ckpt={packed}")):
        assert main(["generate", ckpt, "label=1", "n=2", "steps=4", "seed=3", f"out={tmp_path / name}"]) == 0
    a, b = (np.load(tmp_path / name / "grid.npy") for name in "ab")
    assert np.array_equal(a, b)

    with safe_open(str(packed), framework="pt") as f:
        metadata = f.metadata()
    weights = load_file(str(packed))
    hostile = dict(metadata)
    hostile["stage1.config"] = metadata["stage1.config"].replace(
        "diffusionkit.nets.low_resolution.LowResolution", "os.system")
    save_file(weights, str(tmp_path / "hostile.safetensors"), metadata=hostile)
    assert main(["generate", f"ckpt={tmp_path / 'hostile.safetensors'}", f"out={tmp_path / 'h'}"]) == 2
    err = capsys.readouterr().err
    assert "os.system" in err and "Traceback" not in err and not (tmp_path / "h").exists()
    save_file(weights, str(tmp_path / "many.safetensors"), metadata={**metadata, "stages": "99"})
    assert main(["generate", f"ckpt={tmp_path / 'many.safetensors'}", f"out={tmp_path / 'm'}"]) == 2
    assert "whose 'stages' ('99') is not a count from 2 to 8" in capsys.readouterr().err
    assert main(["cascade", f"ckpt={base}", f"out={tmp_path / 'one'}"]) == 2
    assert "names one model; a cascade is a base and its upsamplers" in capsys.readouterr().err
