"""Bundles and checkpoints from elsewhere are data, not code."""

import pytest
import torch
from safetensors.torch import save_file

from diffusionkit.bundle import FORMAT, check_targets, load_model
from diffusionkit.errors import UsageError


class Boom:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_a_config_naming_a_foreign_class_is_refused():
    with pytest.raises(UsageError, match="names _target_ 'os.system', which neither diffusionkit nor an installed"):
        check_targets({"net": {"_target_": "diffusionkit.nets.unet.UNet"}, "x": [{"_target_": "os.system"}]},
                      ("diffusionkit", "torch"))


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
