"""The editing commands (vary, convert, inpaint, extend, interpolate, roundtrip) through the command
layer on an untrained tiny toy model (1x32x32 arrays), plus the pieces they share (region masks, continuation
windows, slerp, partial DDIM inversion). Fast: no training, a few sampling steps per run."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from diffusionkit.apps.edits import continuation_window, edit_axis, output_names, region_mask, slerp
from diffusionkit.bundle import file_sha256
from diffusionkit.cli import main
from diffusionkit.commands import run_command
from diffusionkit.config import compose_config
from diffusionkit.diffusion.guidance import strength_tail
from diffusionkit.diffusion.model import DiffusionModel
from diffusionkit.diffusion.objectives import training_target
from diffusionkit.diffusion.samplers import invert_ddim, sample_ddim
from diffusionkit.diffusion.schedules import NoiseSchedule, append_dims, sigmas_for_steps
from diffusionkit.errors import UsageError
from tests.toy_modality import ToyModality
from tests.untrained_bundle import untrained_bundle

CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TINY = ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16", "net.attention_levels=[]",
        "modality.channels=1"]
W = 32  # the model's item width (and height)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An untrained tiny 1x32x32 toy model as a bundle, and two input arrays. Its all-zero
    parameters (the zero-initialised output layer among them) are randomised, so that inputs and
    labels change what it predicts."""
    folder = tmp_path_factory.mktemp("edit_model")
    bundle = untrained_bundle(TINY, CLASSES, folder)
    rows, cols = np.mgrid[0:W, 0:W]
    a = (40 + 5 * cols).astype(np.uint8)
    a[8:24, 10:20] = 250
    b = (200 - 4 * rows).astype(np.uint8)
    b[12:20, :] = 10
    for name, grey in (("a", a), ("b", b)):
        np.save(folder / f"{name}.npy", (grey[None] / 127.5 - 1).astype(np.float32))
    return SimpleNamespace(bundle=bundle, a=folder / "a.npy", b=folder / "b.npy", folder=folder)


def levels(path) -> np.ndarray:
    """The grey levels (0-255) an 8-bit picture of the saved 1xWxW item would hold."""
    return np.rint(np.clip((np.load(path)[0] + 1) * 127.5, 0, 255)).astype(np.int16)


def run(command: str, model, out, *overrides: str):
    return run_command(command, [f"ckpt={model.bundle}", f"out={out}", *overrides])


def error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- vary ------------------------------------------------------------------------------------


def test_vary_writes_variations_that_differ_and_are_seeded(model, tmp_path):
    out = run("vary", model, tmp_path / "v1", f"input={model.a}", "n=3", "strength=0.5", "steps=3", "seed=1")
    assert out == tmp_path / "v1"
    assert names(out) == ["grid.npy", "recipe.yaml", "source.npy",
                          "variation_000.npy", "variation_001.npy", "variation_002.npy"]
    source = levels(out / "source.npy")
    assert np.array_equal(source, levels(model.a))
    variations = [levels(out / f"variation_{i:03d}.npy") for i in range(3)]
    assert all(v.shape == (W, W) for v in variations)
    for i, v in enumerate(variations):
        assert np.abs(v - source).mean() > 2, "a strength 0.5 variation is not the source"
        for other in variations[i + 1:]:
            assert np.abs(v - other).mean() > 2, "variations differ from each other"
    assert np.load(out / "grid.npy").shape == (3, 1, W, W)
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["seed"] == 1 and recipe["command"]["strength"] == 0.5 and recipe["command"]["n"] == 3
    assert recipe["checkpoint"]["sha256"] == file_sha256(model.bundle)
    assert recipe["classes"] == CLASSES
    assert recipe["command"]["label"] == "auto" and recipe["label_inferred"] in CLASSES

    again = run("vary", model, tmp_path / "v2", f"input={model.a}", "n=3", "strength=0.5", "steps=3", "seed=1")
    other = run("vary", model, tmp_path / "v3", f"input={model.a}", "n=3", "strength=0.5", "steps=3", "seed=2")
    for i in range(3):
        name = f"variation_{i:03d}.npy"
        assert np.array_equal(levels(again / name), variations[i]), "same seed, same variations"
        assert np.abs(levels(other / name) - variations[i]).mean() > 2, "another seed, other variations"


def test_vary_of_a_folder_edits_each_file_as_alone_and_skips_the_unreadable(model, tmp_path, capsys):
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    for name in ("a.npy", "sub/b.npy", ".hidden/c.npy"):
        (folder / name).write_bytes((model.a if name == "a.npy" else model.b).read_bytes())
    (folder / "broken.npy").write_bytes(b"not an array")
    (folder / "notes.txt").write_text("not a medium")
    capsys.readouterr()
    out = run("vary", model, tmp_path / "v", f"input={folder}", "n=2", "strength=0.5", "steps=3", "seed=1")
    printed = capsys.readouterr().out
    assert out == tmp_path / "v" and names(out) == ["a", "sub"] and names(out / "sub") == ["b"]
    for item in (out / "a", out / "sub" / "b"):
        assert names(item) == ["grid.npy", "recipe.yaml", "source.npy", "variation_000.npy", "variation_001.npy"]
    recipe = yaml.safe_load((out / "sub" / "b" / "recipe.yaml").read_text())
    assert recipe["command"]["input"] == str(folder / "sub" / "b.npy") and recipe["label_inferred"] in CLASSES
    assert f"skipped {folder / 'broken.npy'}: cannot read array" in printed
    assert f"the model hears {folder / 'a.npy'} as '" in printed
    assert printed.strip().splitlines()[-1] == (f"vary: 2 of 3 files of {folder} edited into {out}; 1 skipped: "
                                                "broken.npy")
    alone = run("vary", model, tmp_path / "alone", f"input={folder / 'sub' / 'b.npy'}", "n=2", "strength=0.5",
                "steps=3", "seed=1")
    for name in ("variation_000.npy", "variation_001.npy"):
        assert np.array_equal(np.load(alone / name), np.load(out / "sub" / "b" / name)), "the same as alone"


def test_a_folder_without_readable_files_is_one_line_and_writes_nothing(model, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a medium")
    assert error_line(capsys, ["vary", f"ckpt={model.bundle}", f"input={empty}", f"out={tmp_path / 'o1'}"]) == (
        f"diffusionkit vary: error: input={empty}: the folder holds no .npy files (hidden ones, .name, are left out); "
        "give a file or a folder of them")
    (empty / "broken.npy").write_bytes(b"not an array")
    assert main(["vary", f"ckpt={model.bundle}", f"input={empty}", f"out={tmp_path / 'o2'}", "steps=2"]) == 2
    assert capsys.readouterr().err.strip() == (f"diffusionkit vary: error: input={empty}: none of its 1 files could be "
                                               "read (each named above)")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_a_folder_follows_linked_folders_once_and_checks_the_label_before_reading_any_file(model, tmp_path, capsys):
    elsewhere, folder = tmp_path / "elsewhere", tmp_path / "mine"
    elsewhere.mkdir()
    folder.mkdir()
    (elsewhere / "b.npy").write_bytes(model.b.read_bytes())
    (folder / "linked").symlink_to(elsewhere, target_is_directory=True)
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # never walked twice
    (folder / "broken.npy").write_bytes(b"not an array")
    out = run("vary", model, tmp_path / "v", f"input={folder}", "n=1", "steps=2")
    assert names(out) == ["linked"] and names(out / "linked") == ["b"]
    capsys.readouterr()
    assert main(["vary", f"ckpt={model.bundle}", f"input={folder}", "label=banana", f"out={tmp_path / 'bad'}"]) == 2
    printed = capsys.readouterr()
    assert "unknown label 'banana'" in printed.err and "skipped" not in printed.out  # before broken.npy is read


def test_output_names_keep_the_suffix_only_where_two_files_share_a_stem_and_never_repeat(tmp_path):
    files = [tmp_path / "kick.flac", tmp_path / "kick.wav", tmp_path / "hats" / "open.wav"]
    assert output_names(files, tmp_path) == ["kick_flac", "kick_wav", "hats/open"]
    clashing = [tmp_path / "kick.NPY", tmp_path / "kick.npy", tmp_path / "kick_npy.npy", tmp_path / "Snare.npy",
                tmp_path / "snare.npy"]
    assert output_names(clashing, tmp_path) == ["kick_NPY", "kick_npy_2", "kick_npy_3", "Snare_npy", "snare_npy_2"]
    dotted = [tmp_path / "kick.npy", tmp_path / "kick" / "grid.npy.npy", tmp_path / "v1.2" / "a.b.npy"]
    assert output_names(dotted, tmp_path) == ["kick", "kick/grid_npy", "v1_2/a_b"]  # never out/kick/grid.npy


def test_a_folder_input_leaves_out_earlier_outputs_and_an_edit_error_is_not_a_skipped_file(model, tmp_path,
                                                                                            capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "a.npy").write_bytes(model.a.read_bytes())
    first = run("vary", model, folder / "v1", f"input={folder}", "n=1", "steps=2")
    assert names(first) == ["a"]
    capsys.readouterr()
    second = run("vary", model, folder / "v2", f"input={folder}", "n=1", "steps=2")
    printed = capsys.readouterr().out
    assert names(second) == ["a"], "the first run's outputs are not inputs of the second"
    assert f"note: left out 3 files of earlier outputs in {folder}" in printed
    again = run("vary", model, tmp_path / "again", f"input={first}", "n=1", "steps=2")  # outputs given on purpose
    assert names(again) == ["a"] and names(again / "a") == ["source", "variation_000"]  # its grid is no item
    (folder / "b.npy").write_bytes(model.b.read_bytes())
    err = error_line(capsys, ["convert", f"ckpt={model.bundle}", f"input={folder}", "target=banana",
                              f"out={tmp_path / 'c'}"])
    assert "unknown label 'banana'" in err and not (tmp_path / "c").exists()


def test_vary_label_auto_conditions_on_the_class_the_model_infers(model, tmp_path, monkeypatch):
    from diffusionkit.diffusion.model import DiffusionModel

    monkeypatch.setattr(DiffusionModel, "infer_labels", lambda self, x0: torch.tensor([7]))
    auto = run("vary", model, tmp_path / "auto", f"input={model.a}", "n=2", "strength=0.5", "steps=3")
    named = run("vary", model, tmp_path / "named", f"input={model.a}", "n=2", "strength=0.5", "steps=3",
                "label=seven")
    other = run("vary", model, tmp_path / "other", f"input={model.a}", "n=2", "strength=0.5", "steps=3",
                "label=two")
    assert yaml.safe_load((auto / "recipe.yaml").read_text())["label_inferred"] == "seven"
    assert np.array_equal(levels(auto / "variation_000.npy"), levels(named / "variation_000.npy"))
    assert not np.array_equal(levels(auto / "variation_000.npy"), levels(other / "variation_000.npy"))


def test_vary_strength_zero_reproduces_the_input_and_change_grows_with_strength(model, tmp_path):
    out = run("vary", model, tmp_path / "v", f"input={model.a}", "n=2", "strength=0", "steps=3")
    for i in range(2):
        assert np.array_equal(levels(out / f"variation_{i:03d}.npy"), levels(model.a))
    change = []
    for strength in (0.2, 0.9):
        out = run("vary", model, tmp_path / f"v{strength}", f"input={model.a}", "n=4", f"strength={strength}",
                  "steps=10")
        change.append(np.mean([np.abs(levels(out / f"variation_{i:03d}.npy") - levels(model.a)).mean() for i in range(4)]))
    assert 0 < change[0] < change[1]


# --- convert ---------------------------------------------------------------------------------


def test_convert_to_an_unknown_class_lists_the_classes(model, tmp_path):
    with pytest.raises(UsageError, match=f"unknown label 'zebra'; this model's classes: {', '.join(CLASSES)}$"):
        run("convert", model, tmp_path / "c", f"input={model.a}", "target=zebra")
    assert not (tmp_path / "c").exists()


def test_convert_sdedit_writes_n_conversions_named_by_the_target(model, tmp_path):
    common = [f"input={model.a}", "n=2", "steps=3", "strength=0.8", "seed=4", "guidance=1"]
    by_name = run("convert", model, tmp_path / "by_name", *common, "target=three")
    assert names(by_name) == ["grid.npy", "recipe.yaml", "source.npy", "three_000.npy", "three_001.npy"]
    assert levels(by_name / "three_000.npy").shape == (W, W)
    by_index = run("convert", model, tmp_path / "by_index", *common, "target=3")
    assert names(by_index) == names(by_name)
    assert np.array_equal(levels(by_index / "three_001.npy"), levels(by_name / "three_001.npy"))
    seven = run("convert", model, tmp_path / "seven", *common, "target=seven")
    assert not np.array_equal(levels(seven / "seven_000.npy"), levels(by_name / "three_000.npy")), \
        "the target class reaches the model"


def test_convert_invert_gives_one_deterministic_conversion(model, tmp_path, capsys):
    outs = [run("convert", model, tmp_path / f"c{seed}", f"input={model.a}", "target=two", "method=invert",
                "n=4", "steps=3", "guidance=1", f"seed={seed}") for seed in (0, 1)]
    printed = capsys.readouterr().out
    assert "method=invert is deterministic (DDIM): one conversion written (n=4 asked)" in printed
    assert names(outs[0]) == ["grid.npy", "recipe.yaml", "source.npy", "two_000.npy"]
    assert np.array_equal(levels(outs[0] / "two_000.npy"), levels(outs[1] / "two_000.npy"))


def test_convert_unknown_method_is_one_line(model, tmp_path, capsys):
    err = error_line(capsys, ["convert", f"ckpt={model.bundle}", f"input={model.a}", "target=two",
                              "method=bogus", f"out={tmp_path / 'c'}"])
    assert err == "diffusionkit convert: error: unknown method 'bogus'; choose method= one of: sdedit, invert"


# --- inpaint ---------------------------------------------------------------------------------


def test_inpaint_regenerates_only_the_region(model, tmp_path):
    out = run("inpaint", model, tmp_path / "i", f"input={model.a}", "n=2", "start=0.25", "end=0.5", "steps=3")
    assert names(out) == ["grid.npy", "inpainted_000.npy", "inpainted_001.npy", "recipe.yaml", "source.npy"]
    source = levels(model.a)
    inside = np.zeros(W, dtype=bool)
    inside[8:16] = True  # [0.25, 0.5) of the width (the toy has no time axis: the last axis)
    for i in range(2):
        result = levels(out / f"inpainted_{i:03d}.npy")
        assert np.array_equal(result[:, ~inside], source[:, ~inside])
        assert np.abs(result[:, inside] - source[:, inside]).mean() > 2


def test_inpaint_empty_region_is_refused(model, tmp_path, capsys):
    with pytest.raises(UsageError, match="need 0 <= start < end <= 1"):
        run("inpaint", model, tmp_path / "i", f"input={model.a}", "start=0.5", "end=0.5")
    err = error_line(capsys, ["inpaint", f"ckpt={model.bundle}", f"input={model.a}", "start=0.6", "end=0.2"])
    assert err == ("diffusionkit inpaint: error: need 0 <= start < end <= 1 (fractions of the length), "
                   "got start=0.6 end=0.2")


# --- extend ----------------------------------------------------------------------------------


def test_extend_appends_windows_after_the_input(model, tmp_path):
    out = run("extend", model, tmp_path / "e", f"input={model.a}", "n=2", "context=0.25", "times=2", "steps=3")
    assert names(out) == ["extended_000.npy", "extended_001.npy", "grid.npy", "recipe.yaml", "source.npy"]
    keep = round(0.25 * W)
    for i in range(2):
        extended = levels(out / f"extended_{i:03d}.npy")
        assert extended.shape == (W, W + 2 * (W - keep))
        assert np.array_equal(extended[:, :W], levels(model.a))
    with pytest.raises(UsageError, match="times must be a whole number from 1 to 1000"):
        run("extend", model, tmp_path / "e0", f"input={model.a}", "times=0")
    with pytest.raises(UsageError, match="context must be a number strictly between 0 and 1"):
        run("extend", model, tmp_path / "e1", f"input={model.a}", "context=1.0", "steps=1")


# --- interpolate -----------------------------------------------------------------------------


def test_interpolate_writes_the_ends_and_n_items_from_a_to_b(model, tmp_path):
    out = run("interpolate", model, tmp_path / "p", f"a={model.a}", f"b={model.b}", "n=5", "steps=20",
              "sampler=ddim")
    items = ["000_t0.00", "001_t0.25", "002_t0.50", "003_t0.75", "004_t1.00"]
    assert names(out) == sorted(["a.npy", "b.npy", "grid.npy", "recipe.yaml", *(f"{i}.npy" for i in items)])
    a, b = levels(out / "a.npy"), levels(out / "b.npy")
    assert np.array_equal(a, levels(model.a)) and np.array_equal(b, levels(model.b))
    first, middle, last = (levels(out / f"{items[i]}.npy") for i in (0, 2, 4))
    apart = np.abs(a - b).mean()
    assert np.abs(first - a).mean() < apart / 4, "the t=0 end reproduces a (DDIM inversion round trip)"
    assert np.abs(last - b).mean() < apart / 4, "the t=1 end reproduces b"
    assert np.abs(middle - first).mean() > 2 and np.abs(middle - last).mean() > 2


def test_interpolate_needs_two_items(model, capsys):
    err = error_line(capsys, ["interpolate", f"ckpt={model.bundle}", f"a={model.a}", f"b={model.b}", "n=1"])
    assert err == ("diffusionkit interpolate: error: n must be a whole number from 2 to 100000 (the items from a "
                   "to b inclusive), got n=1")


# --- roundtrip -------------------------------------------------------------------------------


def test_roundtrip_of_a_clean_item(model, tmp_path, capsys):
    out = tmp_path / "r"
    metrics = run_command("roundtrip", ["modality=toy", "modality.channels=1", f"input={model.a}", f"out={out}"])
    printed = capsys.readouterr().out
    assert "psnr_db" in printed and "model_space_rmse" in printed and str(out) in printed
    report = json.loads((out / "roundtrip.json").read_text())
    assert report["input"] == str(model.a)
    assert report["modality"]["_target_"].endswith("ToyModality")
    assert report["metrics"] == pytest.approx(metrics)
    assert report["metrics"]["psnr_db"] > 40 and report["metrics"]["model_space_rmse"] < 0.01
    assert np.array_equal(levels(out / "a.npy"), levels(model.a))


# --- named inputs and checkpoints ------------------------------------------------------------


def test_unknown_named_input_lists_what_the_model_takes(model, capsys):
    for option in ("output_rate=1", "media.output_rate=1"):
        err = error_line(capsys, ["vary", f"ckpt={model.bundle}", f"input={model.a}", option])
        assert err == ("diffusionkit vary: error: unknown option 'output_rate' for this model; "
                       "it takes: channels, spatial_size, max_values")
    err = error_line(capsys, ["vary", f"ckpt={model.bundle}", f"input={model.a}", "media.spatial_size=[16,16]"])
    assert "would change the model's data shape (1, 32, 32) -> (1, 16, 16)" in err


def test_media_options_are_routed_to_the_media_mapping():
    cfg = compose_config("vary", ["ckpt=m.safetensors", "input=x.npy", "media.output_rate=44100", "midi=true"])
    assert dict(cfg.media) == {"output_rate": 44100}
    assert dict(cfg.inputs) == {"midi": True}


def test_unknown_checkpoint_name_is_one_line(capsys):
    err = error_line(capsys, ["vary", "ckpt=no_such_name", f"input={__file__}"])
    assert err.startswith("diffusionkit vary: error: checkpoint 'no_such_name' not found; "
                          "pass ckpt=<model.safetensors or a .ckpt file>")


def test_a_named_bundle_resolves_to_the_plugins_file(model, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("diffusionkit.bundle.named_bundles", lambda: {"tiny_digits": model.bundle})
    out = run_command("vary", ["ckpt=tiny_digits", f"input={model.a}", "n=1", "steps=1", f"out={tmp_path / 'v'}"])
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["checkpoint"]["path"] == str(model.bundle.resolve())
    err = error_line(capsys, ["vary", "ckpt=tiny_digit", f"input={model.a}"])
    assert err.endswith("not found; pass ckpt=<model.safetensors or a .ckpt file>; bundles shipped by plugins: "
                        "tiny_digits")


# --- region masks, continuation windows, slerp -----------------------------------------------


class TimedToy(ToyModality):
    time_axis = 1


class EarlyTimeToy(ToyModality):
    time_axis = 0


def test_edit_axis_is_the_time_axis_else_the_last():
    assert edit_axis(TimedToy(2, (4, 10))) == 2
    assert edit_axis(EarlyTimeToy(2, (4, 10))) == 1
    assert edit_axis(ToyModality(2, (4, 10))) == 2
    assert edit_axis(ToyModality(1, (7,))) == 1


def test_region_mask_marks_the_region_along_the_time_axis():
    mask = region_mask(TimedToy(2, (4, 10)), 0.2, 0.5)
    assert mask.shape == (1, 1, 4, 10)
    expected = torch.zeros(1, 1, 4, 10)
    expected[..., 2:5] = 1
    assert torch.equal(mask, expected)
    early = region_mask(EarlyTimeToy(2, (4, 10)), 0.5, 1.0)
    expected = torch.zeros(1, 1, 4, 10)
    expected[:, :, 2:4, :] = 1
    assert torch.equal(early, expected)
    tiny = region_mask(TimedToy(1, (4, 10)), 0.0, 0.01)
    assert tiny.sum() == 4 and tiny[..., 0].all(), "a region never rounds to nothing"
    assert region_mask(TimedToy(1, (4, 10)), 0.0, 1.0).all()
    for start, end in ((0.5, 0.5), (0.6, 0.2), (-0.1, 0.5), (0.2, 1.5)):
        with pytest.raises(UsageError, match="need 0 <= start < end <= 1"):
            region_mask(TimedToy(1, (4, 10)), start, end)


def test_continuation_window_starts_with_the_end_of_the_current_item():
    modality = TimedToy(2, (4, 10))
    current = torch.arange(2 * 4 * 17, dtype=torch.float32).view(2, 4, 17)  # already extended once
    known, mask, keep = continuation_window(current, modality, 0.3)
    assert keep == 3
    assert known.shape == (2, 4, 10) and mask.shape == (1, 1, 4, 10)
    assert torch.equal(known[..., :3], current[..., -3:])
    assert not known[..., 3:].any()
    assert torch.equal(mask[..., :3], torch.ones(1, 1, 4, 3)) and not mask[..., 3:].any()
    known, mask, keep = continuation_window(torch.randn(2, 9, 10), EarlyTimeToy(2, (4, 10)), 0.5)
    assert keep == 2 and mask[:, :, :2].all() and not mask[:, :, 2:].any()
    for context in (0.0, 1.0):
        with pytest.raises(UsageError, match="context must lie strictly between 0 and 1"):
            continuation_window(current, modality, context)


def test_slerp_ends_and_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    x, y = torch.zeros(2, 3), torch.zeros(2, 3)
    x[0, 0], y[1, 2] = 2.0, 2.0  # orthogonal, equal norms
    middle = slerp(x, y, 0.5)
    assert middle.norm().item() == pytest.approx(2.0, abs=1e-5)
    assert torch.allclose(middle, (x + y) / 2 ** 0.5, atol=1e-6)
    assert slerp(x, y, 0.25).norm().item() == pytest.approx(2.0, abs=1e-5)
    assert torch.allclose(slerp(a, a.clone(), 0.3), a, atol=1e-5), "identical ends: no division by sin(0)"


# --- partial DDIM inversion ------------------------------------------------------------------

MU, S = 0.5, 0.3
SCHEDULE = NoiseSchedule("linear")


def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The exact denoiser of x0 ~ N(MU, S^2)."""
    return MU + S**2 / (S**2 + append_dims(sigma, x.ndim).to(x) ** 2) * (x - MU)


def transported(x0: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Where the probability-flow ODE of the Gaussian takes x0 at noise level sigma."""
    return MU + (x0 - MU) * (S**2 + sigma**2) ** 0.5 / S


def gaussian_data(shape=(64, 1, 8), seed=3) -> torch.Tensor:
    return MU + S * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_strength_tail_lengths():
    sigmas = sigmas_for_steps(SCHEDULE, 20)
    assert torch.equal(strength_tail(sigmas, 0.0), torch.zeros(1))
    assert torch.equal(strength_tail(sigmas, 1.0), sigmas)
    assert torch.equal(strength_tail(sigmas, 0.3), sigmas[-7:])
    assert len(strength_tail(sigmas, 0.5)) == 11 and strength_tail(sigmas, 0.5)[-1] == 0
    for bad in (-0.1, 1.01):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            strength_tail(sigmas, bad)


def inversion_errors(strength: float, steps: int) -> tuple[float, float]:
    """Partial DDIM inversion of Gaussian data over the strength tail of ``steps`` trailing
    sigmas: (max error of the latent against the exact ODE transport, relative to the tail's
    first sigma; max error of the data sampled back from it with DDIM)."""
    data = gaussian_data().double()
    tail = strength_tail(sigmas_for_steps(SCHEDULE, steps, "trailing").double(), strength)
    latent = invert_ddim(gaussian_denoiser, data, tail)
    back = sample_ddim(gaussian_denoiser, latent, tail)
    return ((latent - transported(data, tail[0])).abs().max() / tail[0]).item(), (back - data).abs().max().item()


@pytest.mark.parametrize("strength", [0.3, 0.6, 1.0])
def test_partial_ddim_inversion_reaches_the_tail_start_and_samples_back(strength):
    latent_error, round_trip_error = inversion_errors(strength, 200)
    assert latent_error < 0.06 and round_trip_error < 0.05
    coarse, _ = inversion_errors(strength, 100)
    fine, _ = inversion_errors(strength, 400)
    assert fine < coarse / 2, "first order: the error shrinks with the step size"


class ExactGaussianNet(nn.Module):
    """A 'network' predicting the exact v of the Gaussian data at (x_vp, t)."""

    def __init__(self, schedule: NoiseSchedule) -> None:
        super().__init__()
        self.schedule = schedule
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x_vp, t, **cond):
        sigma = self.schedule.t_to_sigma(t)
        alpha = append_dims(torch.rsqrt(1 + sigma**2), x_vp.ndim)
        sigma_vp = append_dims(sigma, x_vp.ndim) * alpha
        x0 = gaussian_denoiser(x_vp / alpha, sigma)
        return training_target("v", x0, (x_vp - alpha * x0) / sigma_vp, alpha, sigma_vp)


def test_module_invert_with_strength_then_sample_with_noise_reproduces_the_input():
    module = DiffusionModel(ExactGaussianNet(SCHEDULE), SCHEDULE, (1, 8), prediction="v",
                            clip_denoised=None).eval()
    data = gaussian_data((16, 1, 8))
    steps = 200
    for strength in (0.4, 1.0):
        latent = module.invert(data, steps=steps, spacing="trailing", strength=strength)
        sigma_start = strength_tail(sigmas_for_steps(SCHEDULE, steps, "trailing"), strength)[0]
        assert latent.shape == data.shape
        assert ((latent - transported(data, sigma_start)).abs().max() / sigma_start).item() < 0.06
        back = module.sample(16, noise=latent, strength=strength, sampler="ddim", steps=steps, spacing="trailing")
        assert (back - data).abs().max().item() < 0.05
    assert torch.equal(module.invert(data, steps=steps, strength=0.0), data), "strength 0 inverts nothing"
    assert torch.equal(module.sample(16, noise=data, strength=0.0, steps=steps), data)


def test_animate_on_items_without_a_time_axis_is_one_line(model, tmp_path, capsys):
    assert error_line(capsys, ["animate", f"ckpt={model.bundle}", f"input={model.a}", "steps=2",
                               f"out={tmp_path / 'a'}"]) == (
        "diffusionkit animate: error: animate works along a time axis and this model's items (ToyModality) have none; "
        "redo a region with inpaint start= end=, or make variations with vary")
    assert not (tmp_path / "a").exists()
