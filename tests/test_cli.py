"""The command line: one clear line for every kind of bad input, configs composed from plugins."""

import subprocess
import sys

import pytest

from diffusionkit.cli import main
from diffusionkit.config import available_options, compose_config, route_inputs
from diffusionkit.errors import UsageError
from diffusionkit.plugins import PluginInfo, config_options, discover


def error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_unknown_modality_lists_the_installed_ones(capsys):
    err = error_line(capsys, ["train", "modality=nope", "data=toy_blobs"])
    installed = ", ".join(sorted(available_options()["modality"]))
    assert "toy" in installed
    assert err == (f"diffusionkit train: error: unknown modality 'nope'; installed: {installed} "
                   "(install the plugin that provides it)")


def test_missing_choice_names_the_options(capsys):
    err = error_line(capsys, ["train", "modality=toy"])
    options = sorted(available_options()["data"])
    assert {"folder", "toy_blobs"} <= set(options)
    assert f"choose a data: data=<one of: {', '.join(options)}>" in err


def test_an_experiment_may_choose_the_data(tmp_path, monkeypatch, capsys):
    """The toy modality ships no default data: an experiment's ``override /data:`` chooses one;
    an experiment that chooses none gets the same one line as a command without data=."""
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "chooses_blobs.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /data: toy_blobs\n")
    extra = PluginInfo(name="extra", target="extra:Modality", distribution="extra", version="0",
                       conf_dir=tmp_path, options=config_options(tmp_path))
    installed = discover()
    monkeypatch.setattr("diffusionkit.config.discover", lambda include_incompatible=False: [*installed, extra])
    cfg = compose_config("train", ["modality=toy", "experiment=chooses_blobs"])
    assert cfg.data.dataset._target_ == "diffusionkit_toy.datasets.ToyBlobs"
    options = sorted(available_options()["data"])
    assert error_line(capsys, ["train", "modality=toy", "experiment=digits_fast"]) == \
        f"diffusionkit train: error: choose a data: data=<one of: {', '.join(options)}>"


def test_misspelt_option_is_named(capsys):
    err = error_line(capsys, ["train", "modality=toy", "data=toy_blobs", "trainer.max_stpes=3"])
    assert "max_stpes" in err


def test_unknown_class_name_in_an_override(capsys):
    err = error_line(capsys, ["train", "modality=toy", "data=toy_blobs", "net._target_=diffusionkit.nets.NoNet",
                              "trainer.max_steps=1", "out=/tmp/never-used-dk"])
    assert "diffusionkit.nets.NoNet" in err and "check the class name" in err


def test_missing_checkpoint(capsys, tmp_path):
    err = error_line(capsys, ["generate", f"ckpt={tmp_path / 'missing.safetensors'}"])
    assert err.endswith(f"checkpoint '{tmp_path / 'missing.safetensors'}' not found; "
                        "pass ckpt=<model.safetensors or a .ckpt file>")


def test_corrupt_checkpoint(capsys, tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    assert f"cannot read bundle '{bad}'" in error_line(capsys, ["generate", f"ckpt={bad}"])


def test_unknown_command(capsys):
    assert "unknown command 'trian'" in error_line(capsys, ["trian"])


def test_plugin_configs_join_the_search_path():
    cfg = compose_config("train", ["modality=toy_1d", "data=toy_blobs"])
    assert cfg.modality._target_ == "diffusionkit_toy.modality.ToyModality"
    assert list(cfg.modality.spatial_size) == [32]
    assert cfg.data.dataset._target_ == "diffusionkit_toy.datasets.ToyBlobs"


def test_named_inputs_are_routed_for_commands_that_take_them():
    assert route_inputs("generate", ["ckpt=a", "sketch=b.png", "n=3", "sampler=ddim"]) == \
        ["ckpt=a", "+inputs.sketch=b.png", "n=3", "sampler=ddim"]
    assert route_inputs("train", ["sketch=b.png"]) == ["sketch=b.png"]


def test_compose_errors_are_usage_errors():
    with pytest.raises(UsageError, match="unknown sampler 'fast'"):
        compose_config("generate", ["ckpt=x", "sampler=fast"])


def test_plugins_list_shows_name_version_modality_and_options(capsys):
    assert main(["plugins", "list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("toy"))
    assert "0.1.0" in row and "diffusionkit_toy.modality:ToyModality" in row
    assert "data: toy_blobs" in row and "modality: toy, toy_1d" in row


def test_console_script_runs_from_any_directory(tmp_path):
    result = subprocess.run([sys.executable, "-m", "diffusionkit.cli", "train", "modality=nope", "data=x"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("diffusionkit train: error: unknown modality 'nope'")


def test_a_value_with_an_equals_sign_is_asked_to_be_quoted(capsys, tmp_path):
    path = tmp_path / "epoch=3-step=400.ckpt"
    assert main(["generate", f"ckpt={path}"]) == 2
    assert capsys.readouterr().err.strip() == (f"diffusionkit generate: error: cannot read 'ckpt={path}': quote a "
                                               f"value that contains '=', e.g. ckpt=\"'{path}'\" (or rename the file)")
    assert main(["generate", f"ckpt='{path}'"]) == 2  # quoted: parsed, then the missing file is named
    assert f"checkpoint '{path}' not found" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["generate", "recognizer"])
def test_a_commands_help_shows_its_usage(command, capsys):
    assert main([command, "ckpt=x", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: diffusionkit {command} [key=value ...]\n") and "error" not in out
    assert f"every option and its default: diffusionkit {command} [key=value ...] --cfg job" in out


def test_help_imports_neither_torch_nor_hydra():
    """--help answers before any heavy import (issue 20's cold start: <= 1 s)."""
    code = ("import sys; from diffusionkit.cli import main; main(['--help']); "
            "print(sorted(m for m in ('torch', 'hydra', 'omegaconf', 'lightning') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[0].startswith("usage: diffusionkit")
    assert done.stdout.splitlines()[-1] == "[]"


def test_an_option_needing_a_missing_package_names_it():
    from hydra.errors import InstantiationException

    from diffusionkit.commands import user_message

    err = InstantiationException("Error in call to target 'lightning.pytorch.trainer.trainer.Trainer':\n...")
    err.__cause__ = ModuleNotFoundError("No module named 'torch_xla'")
    assert user_message(err) == ("Trainer: No module named 'torch_xla' (install it, or choose another value for the "
                                 "option that needs it)")


def test_a_constructor_failing_on_its_values_is_named_with_the_cause_not_a_missing_plugin():
    from hydra.errors import InstantiationException

    from diffusionkit.commands import user_message

    err = InstantiationException("Error in call to target 'diffusionkit_toy.modality.ToyModality':\n...")
    err.__cause__ = ZeroDivisionError("integer division or modulo by zero")
    assert user_message(err) == ("ToyModality: ZeroDivisionError: integer division or modulo by zero (check the "
                                 "options given to it)")
    missing = InstantiationException("Error locating target 'nosuch.Thing', set env var HYDRA_FULL_ERROR=1 to see "
                                     "chained exception.")
    missing.__cause__ = ImportError("Error loading 'nosuch.Thing'")
    assert user_message(missing).endswith("(check the class name or install the plugin that provides it)")
