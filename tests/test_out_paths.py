"""Outputs stay inside out=, and no file of the user's is overwritten: class names from bundles and
folders, names of inputs, and resumes into folders that are not this run's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from diffusionkit.bundle import FORMAT, diffusion_weights, load_model, run_metadata, save_bundle
from diffusionkit.cli import main
from diffusionkit.config import compose_config
from diffusionkit.errors import UsageError
from diffusionkit.names import check_class_names, file_stem, inside
from diffusionkit.training.build import build_diffusion_module, build_modality

TINY = ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16", "net.attention_levels=[]",
        "modality.channels=1", "modality.spatial_size=[16,16]"]
ESCAPES = ["x/../../../../../TRAV0", "..", ".", "a\\..\\b", "", "kick\nsnare", "\x00", "k" * 101]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and the sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", ESCAPES)
def test_a_class_name_that_is_not_a_plain_name_is_refused(name):
    with pytest.raises(UsageError, match="bundle 'b': class name .* must be plain names") as refused:
        check_class_names(["kick", name], "bundle 'b'")
    assert "\n" not in str(refused.value)


def test_duplicate_and_non_list_classes_are_refused():
    with pytest.raises(UsageError, match="class name 'kick' appears twice"):
        check_class_names(["kick", "snare", "kick"], "data")
    with pytest.raises(UsageError, match="its classes are not a list"):
        check_class_names({"kick": 0}, "data")


@pytest.mark.parametrize("name, stem", [("x/../../../../../TRAV0", "x_.._.._.._.._.._TRAV0"), ("..", "_"),
                                        ("000_kick", "000_kick"), ("000_kick:hard*", "000_kick_hard_"),
                                        (".hidden", "hidden"), ("000_caisse claire", "000_caisse claire"),
                                        ("000_Tom\u00e9", "000_Tom\u00e9")])
def test_names_become_plain_file_stems_inside_the_folder(tmp_path, name, stem):
    assert file_stem(name) == stem
    assert inside(tmp_path, name) == tmp_path / stem


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """An untrained tiny 16x16 toy model with three classes, one with characters a file name
    must not carry."""
    folder = tmp_path_factory.mktemp("paths_model")
    cfg = compose_config("train", TINY)
    torch.manual_seed(0)
    module = build_diffusion_module(cfg, build_modality(cfg), num_classes=3)
    return save_bundle(folder / "model.safetensors", diffusion_weights(module),
                       run_metadata(cfg, ["kick", "snare:tight*", "open hat"]))


def with_classes(source: Path, target: Path, classes: list[str]) -> Path:
    """A copy of ``source`` whose metadata names ``classes`` (what an attacker would edit)."""
    with safe_open(str(source), framework="pt") as f:
        metadata = dict(f.metadata())
    metadata["classes"] = json.dumps(classes)
    save_file(load_file(str(source)), str(target), metadata=metadata)
    return target


def test_a_bundle_whose_classes_escape_is_refused_and_overwrites_nothing(bundle, tmp_path, capsys):
    work = tmp_path / "a" / "b" / "c" / "d" / "e"
    work.mkdir(parents=True)
    victim = tmp_path / "TRAV0.wav"
    victim.write_bytes(b"the user's file")
    evil = with_classes(bundle, tmp_path / "evil.safetensors", ["x/../../../../../../TRAV0", "snare", "hat"])
    before = snapshot(tmp_path)
    assert main(["generate", f"ckpt={evil}", "n=3", "steps=2", f"out={work / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "class name 'x/../../../../../../TRAV0' contains a path separator" in err
    assert snapshot(tmp_path) == before


def test_generate_writes_every_file_inside_out(bundle, tmp_path):
    out = tmp_path / "work" / "out"
    assert main(["generate", f"ckpt={bundle}", "n=3", "steps=2", f"out={out}"]) == 0
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and all(out in p.parents for p in files)
    stems = {p.stem for p in out.iterdir()}
    assert {"000_kick", "001_snare_tight_", "002_open hat", "grid"} <= stems


def test_roundtrip_keeps_an_input_named_like_a_folder_inside_out(tmp_path):
    source = tmp_path / "in" / "..npy"
    source.parent.mkdir()
    with source.open("wb") as file:
        np.save(file, np.full((1, 16, 16), 0.5, np.float32))
    out = tmp_path / "work" / "out"
    assert main(["roundtrip", "modality=toy", "modality.channels=1", "modality.spatial_size=[16,16]",
                 f"input={source}", f"out={out}"]) == 0
    files = [p for p in (tmp_path / "work").rglob("*") if p.is_file()]
    assert files and all(out in p.parents for p in files)


def fake_run(folder: Path, modality_target: str, state: dict[str, torch.Tensor]) -> Path:
    """A run folder with the user's config.yaml and a checkpoint of a model of ``modality_target``."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text("# the image run's record\nstage: diffusion\n")
    config = f"stage: diffusion\nmodality:\n  _target_: {modality_target}\n"
    torch.save({"state_dict": state, "global_step": 10,
                "diffusionkit": {"format": FORMAT, "config": config, "classes": "[]"}},
               folder / "checkpoints" / "last.ckpt")
    return folder


def refused(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_resuming_another_modality_s_run_is_refused_and_changes_nothing(tmp_path, capsys):
    run = fake_run(tmp_path / "image_run", "diffusionkit_image.modality.ImageModality", {"w": torch.zeros(2)})
    before = snapshot(run)
    err = refused(capsys, ["train", "modality=toy", "data=toy_blobs", "resume=true", f"out={run}",
                           "trainer.max_steps=1"])
    assert "is another model (it was trained with modality._target_=diffusionkit_image.modality.ImageModality, " \
           "this command has modality._target_=diffusionkit_toy.modality.ToyModality)" in err
    assert snapshot(run) == before


def test_resuming_weights_of_another_shape_is_refused_before_writing(tmp_path, capsys):
    run = fake_run(tmp_path / "run", "diffusionkit_toy.modality.ToyModality", {"net.w": torch.zeros(2)})
    before = snapshot(run)
    err = refused(capsys, ["train", *TINY, "resume=true", f"out={run}", "trainer.max_steps=1"])
    assert f"resume: '{run / 'checkpoints' / 'last.ckpt'}' does not fit this model (" in err
    assert snapshot(run) == before


def test_resume_auto_into_a_folder_of_other_files_is_refused(tmp_path, capsys):
    out = tmp_path / "my_project"
    out.mkdir()
    (out / "config.yaml").write_text("my: own settings\n")
    (out / "notes.txt").write_text("do not lose me")
    before = snapshot(out)
    err = refused(capsys, ["train", *TINY, "resume=auto", f"out={out}", "trainer.max_steps=1"])
    assert err.endswith(f"resume=auto: '{out}' is not empty and holds no checkpoint of this run (it was trained with "
                        f"stage=None, this command has stage=diffusion); choose a new or empty out= "
                        f"(nothing was overwritten)")
    assert snapshot(out) == before
    (out / "config.yaml").unlink()
    err = refused(capsys, ["train", *TINY, "resume=auto", f"out={out}", "trainer.max_steps=1"])
    assert "holds no checkpoint of this run (no config.yaml)" in err


def test_a_bundle_with_unreadable_classes_is_one_line(bundle, tmp_path):
    with safe_open(str(bundle), framework="pt") as f:
        metadata = dict(f.metadata())
    metadata["classes"] = "[not json"
    path = tmp_path / "bad.safetensors"
    save_file(load_file(str(bundle)), str(path), metadata=metadata)
    with pytest.raises(UsageError, match=f"bundle '{path}': its classes are not readable JSON"):
        load_model(path)


def real_checkpoint(path: Path) -> Path:
    """A checkpoint whose weights fit the TINY model (what a downloaded checkpoint of it would hold)."""
    cfg = compose_config("train", TINY)
    module = build_diffusion_module(cfg, build_modality(cfg), num_classes=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": module.state_dict(), "global_step": 2}, path)
    return path


def test_resuming_a_downloaded_checkpoint_never_writes_beside_it(tmp_path, capsys):
    """A checkpoint outside a run's checkpoints/ folder names no run: the user's files beside it
    (their own config.yaml and model) stay untouched, and out= is asked for."""
    downloads = tmp_path / "Downloads"
    ckpt = real_checkpoint(downloads / "dl.ckpt")
    (downloads / "config.yaml").write_text("my own project settings\n")
    (downloads / "model.safetensors").write_bytes(b"my precious model")
    before = snapshot(downloads)
    err = refused(capsys, ["train", *TINY, f"resume={ckpt}", "trainer.max_steps=3"])
    assert f"resume: '{ckpt}' is not in a run's checkpoints/ folder, so it names no run to continue in; " \
           f"give out=<new folder>" in err
    assert snapshot(downloads) == before


def test_resuming_into_a_folder_of_other_files_is_refused(tmp_path, capsys):
    ckpt = real_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("keep")
    before = snapshot(project)
    err = refused(capsys, ["train", *TINY, f"resume={ckpt}", f"out={project}", "trainer.max_steps=3"])
    assert f"resume: '{project}' is not a run of this model (no config.yaml)" in err
    assert snapshot(project) == before


def test_resuming_a_checkpoint_whose_state_dict_is_not_a_mapping_is_one_line(tmp_path, capsys):
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": [1, 2], "global_step": 2}, ckpt)
    err = refused(capsys, ["train", *TINY, f"resume={ckpt}", "trainer.max_steps=3"])
    assert "its state_dict is not a mapping of names to tensors" in err
