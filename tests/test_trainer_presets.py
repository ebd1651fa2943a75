"""The trainer presets compose and build (without their hardware: no GPU here), and the module
options they carry (channels_last, compile) reach the module."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy, SingleDeviceStrategy
from torch import nn

from diffusionkit.config import compose_config
from diffusionkit.training.build import build_diffusion_module, build_modality
from diffusionkit.training.checkpoint_io import SafeCheckpointIO
from diffusionkit.devices import resolve_precision, to_channels_last
from diffusionkit.training.trainer_options import apply_module_options, build_trainer
from tests.toy_modality import ToyModality

BASE = ["modality=toy", "data=toy_blobs"]


def trainer_config(*overrides: str):
    return compose_config("train", [*BASE, *overrides]).trainer


def test_the_default_preset_is_one_cpu_process_with_safe_checkpoints():
    cfg = trainer_config()
    assert (cfg.accelerator, cfg.devices, cfg.precision, cfg.channels_last, cfg.compile) == \
        ("cpu", 1, "auto", True, False)
    trainer = build_trainer(cfg, logger=False)
    native = resolve_precision("auto", torch.device("cpu")) == "bf16"
    assert trainer.precision == ("bf16-mixed" if native else "32-true")
    assert isinstance(trainer.strategy, SingleDeviceStrategy)
    assert isinstance(trainer.strategy.checkpoint_io, SafeCheckpointIO)


def test_the_gpu_preset_is_bf16_channels_last_and_builds_once_its_device_exists():
    cfg = trainer_config("trainer=gpu")
    assert (cfg.accelerator, cfg.precision, cfg.channels_last, cfg.compile) == ("gpu", "bf16-mixed", True, False)
    trainer = build_trainer(trainer_config("trainer=gpu", "trainer.accelerator=cpu"), logger=False)
    assert trainer.precision == "bf16-mixed"


def test_the_ddp_presets_build_a_ddp_strategy_with_the_backend_of_the_device():
    cfg = trainer_config("trainer=ddp", "trainer.num_nodes=2")
    assert (cfg.strategy, cfg.devices, cfg.num_nodes, cfg.precision) == ("ddp", -1, 2, "bf16-mixed")
    trainer = build_trainer(trainer_config("trainer=ddp_cpu", "trainer.devices=3"), logger=False)
    assert isinstance(trainer.strategy, DDPStrategy) and trainer.num_devices == 3
    assert trainer.strategy._get_process_group_backend() == "gloo"  # nccl on GPUs (Lightning's choice)
    assert isinstance(trainer.strategy.checkpoint_io, SafeCheckpointIO)


def test_the_fsdp_preset_wraps_networks_and_their_blocks():
    from hydra.utils import instantiate

    from diffusionkit.nets.layers import ResBlock
    from diffusionkit.nets.unet import UNet

    cfg = trainer_config("trainer=fsdp")
    strategy = instantiate(cfg.strategy)
    assert isinstance(strategy, FSDPStrategy)
    assert strategy.kwargs["use_orig_params"] is True
    assert {UNet, ResBlock} <= set(strategy.kwargs["auto_wrap_policy"]._module_classes)


def test_channels_last_converts_2d_and_3d_conv_weights_and_leaves_1d_alone():
    nets = {rank: nn.Sequential(getattr(nn, f"Conv{rank}d")(2, 4, 3), nn.Linear(4, 4)) for rank in (1, 2, 3)}
    assert to_channels_last(nets[1], 1) == 0
    assert to_channels_last(nets[2], 2) == 1
    assert nets[2][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not nets[2][0].weight.is_contiguous()
    assert to_channels_last(nets[3], 3) == 1
    assert nets[3][0].weight.is_contiguous(memory_format=torch.channels_last_3d)


def test_module_options_reach_a_diffusion_module_without_changing_its_outputs_or_names(monkeypatch):
    cfg = compose_config("train", ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16",
                                   "net.attention_levels=[]", "trainer=gpu", "trainer.compile=true"])
    torch.manual_seed(0)
    module = build_diffusion_module(cfg, build_modality(cfg), num_classes=10)
    x, t, labels = torch.randn(2, 1, 32, 32), torch.tensor([10, 500]), torch.tensor([1, 2])
    before, names = module.model.net(x, t, label=labels), list(module.state_dict())
    compiled = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__))
    apply_module_options(module, cfg.trainer, spatial_rank=2)
    assert compiled == ["ConditionedNet"]  # the trained net and its conditioners; sampling's EMA copy stays eager
    assert module.model.net.backbone.input_conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert list(module.state_dict()) == names
    assert torch.allclose(module.model.net(x, t, label=labels), before, atol=1e-5)


def test_a_1d_modality_takes_the_gpu_preset_too():
    module = nn.Sequential(nn.Conv1d(1, 2, 3))
    apply_module_options(module, trainer_config("trainer=gpu"), spatial_rank=ToyModality(1, [8]).spatial_rank)
    assert module[0].weight.is_contiguous()


@pytest.mark.parametrize("preset", ["cpu", "gpu", "ddp", "ddp_cpu", "fsdp"])
def test_every_preset_names_only_trainer_arguments_and_module_options(preset):
    import inspect

    import lightning.pytorch as pl

    allowed = set(inspect.signature(pl.Trainer.__init__).parameters) | {"_target_", "channels_last", "compile"}
    assert set(trainer_config(f"trainer={preset}")) <= allowed


def test_a_gan_stage_makes_ddp_look_for_weights_without_gradients():
    from diffusionkit.training.build import build_autoencoder_module

    cfg = compose_config("train", [*BASE, "stage=autoencoder", "first_stage=patchgan", "trainer=ddp_cpu"])
    module = build_autoencoder_module(cfg, build_modality(cfg))
    assert module.has_unused_parameters
    trainer = build_trainer(cfg.trainer, module.has_unused_parameters, logger=False)
    assert trainer.strategy._ddp_kwargs.get("find_unused_parameters") is True
    assert not build_trainer(cfg.trainer, False, logger=False).strategy._ddp_kwargs.get("find_unused_parameters")


def test_a_preset_for_hardware_this_machine_lacks_is_one_line(capsys, tmp_path):
    from diffusionkit.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["train", "modality=toy", "data=toy_blobs", "trainer=gpu", f"out={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("diffusionkit train: error: trainer: ") and "\n" not in err
    assert err.endswith("; without a GPU use trainer=cpu or trainer=ddp_cpu")
    assert not (tmp_path / "run").exists()  # nothing written, the folder taken back: the same out= works next time
