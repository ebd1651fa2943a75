"""The command line: one clear line for every kind of bad input, configs composed from plugins."""

import subprocess
import sys

import pytest

from diffusionkit.cli import main
from diffusionkit.config import available_options, compose_config, route_inputs
from diffusionkit.errors import UsageError
from diffusionkit.plugins import discover


def error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_unknown_modality_lists_the_installed_ones(capsys):
    err = error_line(capsys, ["train", "modality=nope", "data=digits"])
    installed = ", ".join(sorted(p.name for p in discover()))
    assert "image" in installed
    assert err == (f"diffusionkit train: error: unknown modality 'nope'; installed: {installed} "
                   "(install the plugin that provides it)")


def test_missing_choice_names_the_options(capsys):
    err = error_line(capsys, ["train", "modality=image"])
    options = sorted(available_options()["data"])
    assert {"digits", "folder", "shapes"} <= set(options)
    assert f"choose a data: data=<one of: {', '.join(options)}>" in err


def test_misspelt_option_is_named(capsys):
    err = error_line(capsys, ["train", "modality=image", "data=digits", "trainer.max_stpes=3"])
    assert "max_stpes" in err


def test_unknown_class_name_in_an_override(capsys):
    err = error_line(capsys, ["train", "modality=image", "data=digits", "net._target_=diffusionkit.nets.NoNet",
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
    cfg = compose_config("train", ["modality=image", "data=shapes", "cond=sketch"])
    assert cfg.modality._target_ == "diffusionkit_image.modality.ImageModality"
    assert cfg.modality.channels == 3
    assert cfg.cond._target_ == "diffusionkit_image.sketch.SketchCondition"
    assert compose_config("train", ["modality=image", "data=digits"]).modality.channels == 1


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
    row = next(line for line in out.splitlines() if line.startswith("image"))
    assert "0.1.0" in row and "diffusionkit_image.modality:ImageModality" in row
    assert "data: digits, shapes" in row and "modality: image" in row and "cond: sketch" in row


def test_console_script_runs_from_any_directory(tmp_path):
    result = subprocess.run([sys.executable, "-m", "diffusionkit.cli", "train", "modality=nope", "data=x"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("diffusionkit train: error: unknown modality 'nope'")
