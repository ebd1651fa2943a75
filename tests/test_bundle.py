"""Bundles and checkpoints from elsewhere are data, not code."""

import pytest
import torch
from safetensors.torch import save_file

from diffusionkit.bundle import FORMAT, load_model
from diffusionkit.trusted_targets import check_config
from diffusionkit.errors import UsageError


class Boom:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_a_config_naming_a_foreign_class_is_refused():
    with pytest.raises(UsageError, match="_target_ at modality: 'os.system' is outside diffusionkit, its installed "):
        check_config({"net": {"_target_": "diffusionkit.nets.unet.UNet"}, "modality": {"_target_": "os.system"}}, "run")


def test_bundle_with_foreign_target_is_refused_before_anything_is_built(tmp_path):
    path = tmp_path / "evil.safetensors"
    config = "modality:\n  _target_: os.system\n  command: echo hacked\n"
    save_file({"net.w": torch.zeros(1)}, str(path), metadata={"format": FORMAT, "config": config, "classes": "[]"})
    with pytest.raises(UsageError, match="'os.system'"):
        load_model(path)


def test_pickled_code_in_a_checkpoint_is_not_run(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    torch.save({"diffusionkit": {"format": FORMAT}, "payload": Boom()}, path)
    with pytest.raises(UsageError, match=f"cannot read checkpoint '{path}' safely"):
        load_model(path)
    assert "code ran" not in capsys.readouterr().out


def test_a_foreign_safetensors_file_is_named(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(1)}, str(path))
    with pytest.raises(UsageError, match="is not a diffusionkit bundle"):
        load_model(path)


def test_a_truncated_bundle_is_refused_with_one_line(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"net.w": torch.zeros(1000)}, str(path), metadata={"format": FORMAT, "config": "{}", "classes": "[]"})
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UsageError, match=f"cannot read bundle '{path}': ") as refused:
        load_model(path)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("target", ["torch.load", "torch.hub.load", "diffusionkit_evil.Payload",
                                    "lightning.pytorch.LightningModule.load_from_checkpoint"])
def test_only_layers_optimizers_and_loop_parts_of_torch_and_lightning_are_trusted(target):
    config = {"optim": {"optimizer": {"_target_": "torch.optim.AdamW"}},
              "trainer": {"_target_": "lightning.pytorch.Trainer"},
              "logger": {"_target_": "lightning.pytorch.loggers.CSVLogger"}}
    check_config({**config, "net": {"_target_": "diffusionkit.nets.unet.UNet"}}, "run")
    with pytest.raises(UsageError, match=f"_target_ at net: '{target}'"):
        check_config({**config, "net": {"_target_": target}}, "run")


def test_a_modality_option_newer_than_the_bundle_is_accepted(tmp_path):
    """A bundle made before a modality gained an option (here the toy modality's max_values)
    still takes it, as every other constructor parameter; unknown names are still refused."""
    from omegaconf import OmegaConf, open_dict

    from diffusionkit.build import build_diffusion_model, build_modality
    from diffusionkit.bundle import diffusion_weights, run_metadata, save_bundle
    from diffusionkit.config import compose_config

    cfg = compose_config("train", ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16",
                                   "net.attention_levels=[]", "modality.channels=1", "modality.spatial_size=[16,16]"])
    module = build_diffusion_model(cfg, build_modality(cfg), num_classes=0)
    with open_dict(cfg):
        del cfg.modality["max_values"]
    path = save_bundle(tmp_path / "old.safetensors", diffusion_weights(module), run_metadata(cfg, []))
    model = load_model(path)
    assert "max_values" not in OmegaConf.to_container(model.config.modality)
    assert model.with_media({"max_values": 1000}).modality.max_values == 1000
    with pytest.raises(UsageError) as info:
        model.with_media({"max_value": 1000})
    assert str(info.value) == "unknown option 'max_value' for this model; it takes: channels, spatial_size, max_values"
    with pytest.raises(UsageError) as info:
        model.with_media({"prompt": "a blob"})
    assert str(info.value) == ("unknown option 'prompt' for this model; it takes: channels, spatial_size, max_values "
                               "(this model was trained without a 'prompt' condition: cond=text trains one; it "
                               "conditions on: nothing)")
    with pytest.raises(UsageError) as info:
        model.with_media({"negative_prompt": "a blob"})
    assert "trained without a 'negative_prompt' condition: cond=text trains one" in str(info.value)
    for plain in ("negative_label", "none"):  # no condition of that name to train: no such sentence
        with pytest.raises(UsageError) as info:
            model.with_media({plain: 1})
        assert str(info.value).endswith("it takes: channels, spatial_size, max_values")
    with pytest.raises(UsageError) as info:  # vary target=snare: another command's option is named as such
        model.with_media({"target": "snare"})
    assert str(info.value).endswith("max_values ('target' is an option of convert: e.g. diffusionkit convert ... "
                                    "target=...)")
    with pytest.raises(UsageError) as info:
        model.with_media({"strength": 0.3})
    assert "('strength' is an option of convert, interpolate and vary: e.g. diffusionkit convert" in str(info.value)


def test_a_bundle_carries_no_folder_of_the_training_machine(tmp_path):
    """out= and resume= name folders of the machine a model was trained on; a shipped bundle
    must not carry them (they are not part of the model)."""
    import json

    from safetensors import safe_open

    from diffusionkit.build import build_diffusion_model, build_modality
    from diffusionkit.bundle import diffusion_weights, run_metadata, save_bundle
    from diffusionkit.config import compose_config

    run = tmp_path / "secret_machine_folder"
    cfg = compose_config("train", ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16",
                                   "net.attention_levels=[]", "modality.channels=1", "modality.spatial_size=[16,16]",
                                   f"out={run}", f"resume={run / 'checkpoints' / 'last.ckpt'}"])
    module = build_diffusion_model(cfg, build_modality(cfg), num_classes=0)
    path = save_bundle(tmp_path / "model.safetensors", diffusion_weights(module), run_metadata(cfg, ["a"]))
    with safe_open(str(path), "pt") as bundle:
        metadata = bundle.metadata()
    assert "secret_machine_folder" not in json.dumps(metadata)
    assert load_model(path).config.net.model_channels == 16


def test_a_run_folder_as_ckpt_reads_its_bundle_else_says_what_it_lacks(tmp_path):
    from diffusionkit.bundle import resolve_checkpoint

    (tmp_path / "adapter.safetensors").write_bytes(b"")
    assert resolve_checkpoint(tmp_path) == tmp_path / "adapter.safetensors"  # a finetune's out=
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert resolve_checkpoint(str(tmp_path)) == tmp_path / "model.safetensors"  # train's (or a merged finetune's)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match=r"is a folder without model\.safetensors or adapter\.safetensors in it"):
        resolve_checkpoint(empty)
