"""Grading on real data held out by source: folds keep sources together, every real item is judged
by a classifier that never saw its source, and `evaluate data=...` reports real figures (and says
"self-judged" without it)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from diffusionkit.apps.evaluate_real import real_items
from diffusionkit.build import build_diffusion_model, build_modality
from diffusionkit.bundle import diffusion_weights, run_metadata, save_bundle
from diffusionkit.cli import main
from diffusionkit.config import compose_config
from diffusionkit.errors import UsageError
from diffusionkit.evaluation import class_weights, fit_classifier, judge_by_source, source_folds, TensorItems
from diffusionkit.training.folder_dataset import FolderDataset

TINY = ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16", "net.attention_levels=[]",
        "modality.channels=1", "modality.spatial_size=[16,16]"]


def test_folds_keep_each_source_whole_and_balance_items():
    sources = ["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"] * 1
    folds = source_folds(sources, 2)
    for source in set(sources):
        assert len({int(f) for f, s in zip(folds, sources) if s == source}) == 1
    assert sorted(torch.bincount(folds).tolist()) == [6, 6]
    assert source_folds(sources, 10).max() == 3  # never more folds than sources


def test_held_out_accuracy_is_measured_on_sources_the_judge_never_saw():
    """Two sources that disagree: in source 'a' fine noise means class 0 and blocky noise class 1,
    in 'b' the other way round. A judge tested on what it trained on would score ~100%; held out by
    source it scores ~0%."""
    generator = torch.Generator().manual_seed(0)
    fine = torch.randn(40, 1, 16, 16, generator=generator)
    blocky = torch.randn(40, 1, 4, 4, generator=generator).repeat_interleave(4, 2).repeat_interleave(4, 3)
    x = torch.cat([fine[:20], blocky[:20], fine[20:], blocky[20:]])
    labels = torch.tensor([0] * 20 + [1] * 20 + [1] * 20 + [0] * 20)
    sources = ["a"] * 40 + ["b"] * 40
    judge = judge_by_source(x, labels, sources, 2, 2, folds=2, epochs=40, batch_size=16, lr=2e-3, width=32)
    assert len(judge.fold_models) == 2
    assert judge.heldout_accuracy < 0.2
    assert float((judge.predict(x) == labels).float().mean()) > 0.8  # on items it trained on: memorised


class NoSources(torch.utils.data.Dataset):
    classes = ["zero", "one"]

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return {"x": torch.zeros(1, 4, 4), "label": i}


def test_data_without_sources_is_one_line():
    with pytest.raises(UsageError, match="names no source .* per item, so nothing can be held out by source"):
        real_items(NoSources(), ["zero", "one"], "data NoSources")


def test_data_sharing_no_class_with_the_model_is_one_line():
    data = NoSources()
    data.sources = ["s1", "s2"]
    with pytest.raises(UsageError, match="has no item of the model's classes \\(kick, snare\\); its classes: zero, one"):
        real_items(data, ["kick", "snare"], "data NoSources")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An untrained tiny 16x16 toy model (classes 0-9) and a real folder of classes 0, 1, 2 with
    3 sources per class (sub-folders below the class folders) and a class the model does not have."""
    folder = tmp_path_factory.mktemp("real_eval")
    cfg = compose_config("train", TINY)
    torch.manual_seed(0)
    module = build_diffusion_model(cfg, build_modality(cfg), num_classes=10)
    bundle = save_bundle(folder / "model.safetensors", diffusion_weights(module),
                         run_metadata(cfg, [str(d) for d in range(10)]))
    rng = np.random.default_rng(0)
    for c, name in enumerate(["0", "1", "2", "nine"]):
        for source in ["kit_a", "kit_b", "kit_c"]:
            (folder / "real" / name / source).mkdir(parents=True)
            for i in range(2):
                values = np.clip(0.5 * c - 0.7 + rng.normal(0, 0.08, (1, 16, 16)), -1, 1).astype(np.float32)
                np.save(folder / "real" / name / source / f"{i}.npy", values)
    return bundle, folder / "real"


def test_folder_items_name_their_source(tiny):
    _, real = tiny
    modality = build_modality(compose_config("train", TINY))
    data = FolderDataset(real, modality)
    assert len(data.sources) == len(data) == 24
    assert sorted(set(data.sources)) == ["kit_a", "kit_b", "kit_c"]


def test_evaluate_on_real_data_reports_real_figures(tiny, tmp_path, capsys):
    bundle, real = tiny
    out = tmp_path / "eval"
    code = main(["evaluate", f"ckpt={bundle}", "data=folder", f"data.dataset.root={real}", "n_per_class=2", "steps=2",
                 "classifier.epochs=1", "real_folds=2", "vary.strengths=[0.3]", "vary.n=1",
                 "vary.sources_per_class=2", "auto_label_per_class=2", "convert.pairs=[[0,2]]",
                 "convert.strengths=[0.5]", "convert.sources=2", f"out={out}"])
    printed = capsys.readouterr().out
    assert code == 0
    report = json.loads((out / "evaluation.json").read_text())
    grading = report["grading"]
    assert grading["judged_on"] == "real data held out by source"
    assert grading["sources"] == ["kit_a", "kit_b", "kit_c"] and grading["folds"] == 2
    assert grading["items"] == 18 and grading["left_out_classes"] == {"nine": 6}
    assert report["auto_label"]["items"] == 6 and 0.0 <= report["auto_label"]["accuracy"] <= 1.0
    assert {"class_kept", "true_class_kept", "diversity"} <= set(report["vary"][0])
    assert [row["label"] for row in report["vary"]] == ["auto", "given"]  # vary.label's default: both
    assert report["convert"][0]["target"] == "2"
    assert grading["judge_training"] == {"augment": [], "balanced": True, "epochs": 1}  # the toy offers none
    assert "judged on real data held out by source: 18 items from 3 sources in 2 folds" in printed
    assert "label=auto names the true class of" in printed
    # classes 3-9 have no real item: a judge that never heard them cannot name them, so they are
    # neither generated nor counted (they once pulled the overall figure down by 7 tenths)
    not_judged = [str(d) for d in range(3, 10)]
    assert grading["not_judged"] == not_judged
    assert [name for name, rate in report["per_class"].items() if rate is None] == not_judged
    judged = [report["per_class"][name] for name in "012"]
    assert report["generated_accuracy"] == pytest.approx(sum(judged) / 3)
    assert f"not generated or judged (no real items of them in data=): {', '.join(not_judged)}" in printed
    assert not any(line.startswith("9 ") for line in printed.splitlines())


def test_evaluate_without_real_data_says_self_judged(tiny, tmp_path, capsys):
    bundle, _ = tiny
    out = tmp_path / "eval"
    assert main(["evaluate", f"ckpt={bundle}", "n_per_class=2", "steps=2", "classifier.epochs=1",
                 "vary.strengths=[]", f"out={out}"]) == 0
    assert capsys.readouterr().out.startswith("SELF-JUDGED (judge trained on the model's own training data")
    assert json.loads((out / "evaluation.json").read_text())["grading"]["judged_on"].startswith("self-judged")


def test_edits_can_start_only_from_chosen_sources(tiny, tmp_path, capsys):
    bundle, real = tiny
    common = [f"ckpt={bundle}", "data=folder", f"data.dataset.root={real}", "n_per_class=1", "steps=2",
              "classifier.epochs=1", "real_folds=3", "vary.strengths=[]", "auto_label_per_class=5"]
    out = tmp_path / "eval"
    assert main(["evaluate", *common, "heldout_sources=[kit_b]", f"out={out}"]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert report["grading"]["edit_sources"] == ["kit_b"]
    assert report["auto_label"]["items"] == 6  # 2 per class from kit_b alone
    capsys.readouterr()
    assert main(["evaluate", *common, "heldout_sources=[kit_z]", f"out={tmp_path / 'bad'}"]) == 2
    assert "heldout_sources: no real item comes from 'kit_z'; the data's sources: kit_a, kit_b, kit_c" in \
        capsys.readouterr().err


@pytest.mark.parametrize("option, message", [
    (None, "missing value: give data.dataset.root=..."),
    ("data.dataset.root=${nope}", "data.dataset.root: Interpolation key 'nope' not found"),
    ("data.dataset.root=/no/such/folder", "data folder '/no/such/folder' does not exist"),
])
def test_bad_real_data_options_are_one_line(tiny, tmp_path, capsys, option, message):
    bundle, _ = tiny
    out = tmp_path / "eval"
    assert main(["evaluate", f"ckpt={bundle}", "data=folder", *filter(None, [option]), f"out={out}"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("option, message", [
    ("convert.pairs=[[0,banana]]", "unknown label 'banana'"),
    ("convert.pairs=[[0,1,2]]", "convert.pairs: [0, 1, 2] is not a pair; give [source, target] class pairs"),
    ("vary.label=[auto,sometimes]", "vary.label: 'sometimes' is not a label mode"),
])
def test_bad_edit_settings_are_refused_before_any_judge_trains(tiny, tmp_path, capsys, monkeypatch, option,
                                                              message):
    import diffusionkit.apps.evaluate as evaluate

    monkeypatch.setattr(evaluate, "self_judge", lambda *a: pytest.fail("a judge trained before the check"))
    bundle, _ = tiny
    assert main(["evaluate", f"ckpt={bundle}", option, f"out={tmp_path / 'eval'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and not (tmp_path / "eval").exists()


@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize("command", ["evaluate", "recognizer"])
def test_no_command_builds_data_files_a_bundle_names(tiny, tmp_path, capsys, monkeypatch, command, relative):
    """Self-judged grading and a recogniser without ``data=`` build the bundle's own data config:
    refused when that names files (a bundle could point a dataset at the user's folders or have it
    write a cache anywhere: ``recognizer`` wrote a bundle-named drum kit cache before)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    from omegaconf import OmegaConf

    bundle, real = tiny
    with safe_open(str(bundle), framework="pt") as f:
        metadata = dict(f.metadata())
    config = OmegaConf.create(metadata["config"])
    if relative:  # a folder named without a separator, where the user stands: no guessing which text is a path
        monkeypatch.chdir(real.parent)
    root = real.name if relative else str(real)
    config.data.dataset = {"_target_": "diffusionkit.training.folder_dataset.FolderDataset", "root": root,
                           "modality": OmegaConf.to_container(config.modality)}
    metadata["config"] = OmegaConf.to_yaml(config)
    path = tmp_path / "points_at_files.safetensors"
    save_file(load_file(str(bundle)), str(path), metadata=metadata)
    assert main([command, f"ckpt={path}", f"out={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err
    what = "its data FolderDataset reads files" if relative else f"data.dataset.root={real}"
    assert err.strip() == (f"diffusionkit {command}: error: '{path}' was trained on files ({what}); "
                           f"{command} builds no data a bundle names (a bundle is data): "
                           f"{'grade it on' if command == 'evaluate' else 'train it on'} data you choose, e.g. "
                           "data=folder data.dataset.root=DIR")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("data", [None, {}, {"dataset": None}])
def test_a_bundle_naming_no_data_is_one_line_for_a_command_without_data(tiny, tmp_path, capsys, data):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    from omegaconf import OmegaConf

    bundle, _ = tiny
    with safe_open(str(bundle), framework="pt") as f:
        metadata = dict(f.metadata())
    config = OmegaConf.to_container(OmegaConf.create(metadata["config"]))
    config.pop("data") if data is None else config.update(data=data)
    metadata["config"] = OmegaConf.to_yaml(OmegaConf.create(config))
    path = tmp_path / "no_data.safetensors"
    save_file(load_file(str(bundle)), str(path), metadata=metadata)
    assert main(["recognizer", f"ckpt={path}", f"out={tmp_path / 'out'}"]) == 2
    assert capsys.readouterr().err.strip() == (f"diffusionkit recognizer: error: '{path}' names no data it was "
                                               "trained on (data.dataset); give data=NAME, e.g. data=folder "
                                               "data.dataset.root=DIR")


def test_class_weights_make_a_rare_class_count_as_much_as_a_common_one():
    weights = class_weights(torch.tensor([0] * 30 + [1] * 10 + [2] * 5), 4)
    assert weights.tolist() == pytest.approx([0.1, 0.3, 0.6, 3.0])  # 4th: absent, count 1
    assert float(weights.mean()) == pytest.approx(1.0)


def test_a_judge_trains_on_augmented_items():
    seen = []

    def augment(item, generator):
        seen.append(item.shape)
        return item.flip(-1)

    x, labels = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 0, 1, 0, 1])
    fit_classifier(TensorItems(x, labels), 2, 1, 2, epochs=2, batch_size=4, augment=augment, balanced=True)
    assert seen == [torch.Size([1, 8, 8])] * 12  # every item of every epoch


def test_an_unknown_judge_augmentation_is_one_line(tiny, tmp_path, capsys):
    bundle, real = tiny
    assert main(["evaluate", f"ckpt={bundle}", "data=folder", f"data.dataset.root={real}", "n_per_class=1",
                 "steps=2", "classifier.epochs=1", "real_folds=2", "classifier.augment=[warp]",
                 f"out={tmp_path / 'e'}"]) == 2
    assert "augment.transforms: ToyModality offers no transform 'warp'; it offers: none" in capsys.readouterr().err
