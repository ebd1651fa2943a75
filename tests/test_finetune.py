"""``diffusionkit finetune``: a small adapter learned from a folder of the user's files, with new
class names; every command takes it as ``ckpt=``; the base is never changed; a hostile or
mismatched adapter is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from diffusionkit.bundle import file_sha256, load_model
from diffusionkit.cli import main
from diffusionkit.errors import UsageError
from tests.untrained_bundle import untrained_bundle

TINY = ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16", "net.attention_levels=[]",
        "modality.channels=1", "modality.spatial_size=[16,16]"]
CLASSES = ["a", "b"]
FAST = ["steps=6", "batch_size=4", "forgetting=0", "lr=1e-2"]


def user_folder(root: Path, per_class: dict[str, int]) -> Path:
    """Toy files in one sub-folder per class: a flat level per class, a little noise."""
    rng = np.random.default_rng(0)
    for i, (name, count) in enumerate(per_class.items()):
        (root / name).mkdir(parents=True)
        for j in range(count):
            level = -0.8 + 0.8 * i
            np.save(root / name / f"{j}.npy", (level + 0.05 * rng.standard_normal((1, 16, 16))).astype(np.float32))
    return root


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return untrained_bundle(TINY, CLASSES, tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def tuned(base, tmp_path_factory) -> Path:
    folder = user_folder(tmp_path_factory.mktemp("kit") / "kit", {"a": 6, "shaker": 6})
    out = tmp_path_factory.mktemp("tuned") / "run"
    before = file_sha256(base)
    assert main(["finetune", f"ckpt={base}", "data=folder", f"data.dataset.root={folder}", *FAST, "merge=true",
                 f"out={out}"]) == 0
    assert file_sha256(base) == before  # the base file is never changed
    return out


def generate(ckpt: Path, out: Path, *options: str) -> np.ndarray:
    assert main(["generate", f"ckpt={ckpt}", "n=2", "steps=3", "seed=1", f"out={out}", *options]) == 0
    return np.stack([np.load(p) for p in sorted(out.glob("0*.npy"))])


def test_finetune_writes_a_small_adapter_with_the_new_class(tuned, base):
    adapter = tuned / "adapter.safetensors"
    weights = load_file(str(adapter))
    from safetensors import safe_open

    with safe_open(str(adapter), framework="pt") as f:
        metadata = f.metadata()
    assert metadata["kind"] == "adapter" and metadata["base_sha256"] == file_sha256(base)
    assert json.loads(metadata["classes"]) == ["a", "b", "shaker"]
    assert weights["classes.embedding"].shape[0] == 4  # three classes and the null class
    assert any(k.endswith(".lora_down") for k in weights) and adapter.stat().st_size < 2_000_000
    loaded = load_model(adapter)
    assert loaded.classes == ["a", "b", "shaker"] and loaded.module.num_classes == 3
    assert loaded.base is not None and loaded.base.startswith(str(base))
    recipe = (tuned / "recipe.yaml").read_text()
    assert "new_classes:\n  - shaker" in recipe and "seconds:" in recipe
    # the base's class the folder lacks ('b') was rehearsed from the base's own samples
    assert yaml.safe_load(recipe)["result"]["prior"] == {"per_class": 8, "classes": ["b"]}


def test_a_new_class_starts_from_the_base_class_heard_in_its_files(base, tuned):
    import dataclasses

    from omegaconf import OmegaConf

    from diffusionkit.apps.finetune import _label, _start_new_classes, new_class_starts

    loaded = load_model(base)
    heard_as_b = dataclasses.replace(loaded, recognizer=lambda x: torch.tensor([1, 1, 0])[: len(x)])
    x, labels = torch.zeros(5, 1, 16, 16), torch.tensor([0, 0, 2, 2, 2])  # the last three: the new class
    heard = OmegaConf.create({"new_class_init": "heard"})
    assert new_class_starts(heard_as_b, x, labels, ["a", "b", "shaker"], heard) == {2: 1}
    none = OmegaConf.create({"new_class_init": "none"})
    assert new_class_starts(heard_as_b, x, labels, ["a", "b", "shaker"], none) == {}
    model = loaded.module
    _label(model).resize(3)
    _start_new_classes(model, {2: 1})
    table = _label(model).embedder.embedding.weight
    assert torch.equal(table[2], table[1]) and not torch.equal(table[2], table[3])  # 3: the null class
    started = yaml.safe_load((tuned / "recipe.yaml").read_text())["result"]["new_classes_started_from"]
    assert list(started) == ["shaker"] and started["shaker"] in CLASSES


def test_prior_rehearses_only_the_base_classes_the_folder_lacks(base):
    from omegaconf import OmegaConf

    from diffusionkit.apps.finetune import prior_items

    loaded = load_model(base)
    cfg = OmegaConf.create({"prior": 3, "steps_per_sample": 2, "seed": 0})
    x, labels = prior_items(loaded, torch.tensor([0, 0, 2]), cfg)  # class 0 ('a') given, 1 ('b') absent
    assert labels.tolist() == [1, 1, 1] and x.shape == (3, 1, 16, 16) and bool(torch.isfinite(x).all())
    x, labels = prior_items(loaded, torch.tensor([0, 1]), cfg)  # every base class given: nothing to rehearse
    assert x.shape == (0, 1, 16, 16) and labels.numel() == 0
    none = OmegaConf.create({"prior": 0, "steps_per_sample": 2, "seed": 0})
    assert prior_items(loaded, torch.tensor([0]), none)[1].numel() == 0


def test_every_command_takes_the_adapter_and_its_new_class(tuned, tmp_path):
    adapter = tuned / "adapter.safetensors"
    made = generate(adapter, tmp_path / "shaker", "label=shaker")
    assert made.shape == (2, 1, 16, 16)
    assert "scale: 1.0" in (tmp_path / "shaker" / "recipe.yaml").read_text()
    np.save(tmp_path / "in.npy", np.zeros((1, 16, 16), np.float32))
    assert main(["vary", f"ckpt={adapter}", f"input={tmp_path / 'in.npy'}", "n=1", "steps=3", "label=shaker",
                 f"out={tmp_path / 'vary'}"]) == 0
    assert (tmp_path / "vary" / "variation_000.npy").is_file()


def test_adapter_scale_zero_is_the_base_and_one_is_not(tuned, base, tmp_path):
    adapter = tuned / "adapter.safetensors"
    from_base = generate(base, tmp_path / "base", "label=a")
    assert np.array_equal(generate(adapter, tmp_path / "zero", "label=a", "adapter_scale=0"), from_base)
    assert not np.allclose(generate(adapter, tmp_path / "one", "label=a"), from_base)


def test_the_merged_bundle_samples_as_the_adapter_does(tuned, tmp_path):
    merged = generate(tuned / "model.safetensors", tmp_path / "merged", "label=shaker")
    folded = generate(tuned / "adapter.safetensors", tmp_path / "folded", "label=shaker")
    np.testing.assert_allclose(merged, folded, atol=1e-4)


def test_few_files_draw_a_one_line_warning_with_the_count(base, tmp_path, capsys):
    folder = user_folder(tmp_path / "kit", {"a": 3, "b": 6})
    assert main(["finetune", f"ckpt={base}", "data=folder", f"data.dataset.root={folder}", *FAST, "steps=1",
                 f"out={tmp_path / 'out'}"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "few files" in line]
    assert warnings == ["warning: few files to learn from: 3 a (at least 5 per class learn better)"]


def test_method_full_writes_a_whole_bundle(base, tmp_path):
    folder = user_folder(tmp_path / "kit", {"b": 5})
    assert main(["finetune", f"ckpt={base}", "data=folder", f"data.dataset.root={folder}", *FAST, "steps=2",
                 "method=full", f"out={tmp_path / 'out'}"]) == 0
    assert not (tmp_path / "out" / "adapter.safetensors").exists()
    assert load_model(tmp_path / "out" / "model.safetensors").classes == ["a", "b"]


# --- adapters from elsewhere are data ----------------------------------------------------------
def altered(adapter: Path, tmp_path: Path, weights: dict | None = None, **metadata: str) -> Path:
    from safetensors import safe_open

    with safe_open(str(adapter), framework="pt") as f:
        meta = {**f.metadata(), **metadata}
    path = tmp_path / "altered.safetensors"
    weights = weights if weights is not None else load_file(str(adapter))
    save_file({k: v.contiguous() for k, v in weights.items()}, str(path), metadata=meta)
    return path


@pytest.mark.parametrize("change, message", [
    ({"base_sha256": "0" * 64}, "was trained on another base than"),
    ({"base": "no_such_base.safetensors"}, "its base 'no_such_base.safetensors' is not found"),
    ({"base_sha256": "not a hash"}, "its base_sha256 is not a sha256"),
    ({"rank": "100000"}, "out of range"),
    ({"rank": "4"}, "has factors of rank \\[8\\], not its rank 4"),
    ({"base": "~no_such_user_here/base.safetensors"}, "is not found"),
    ({"base": "x" * 300 + "/base.safetensors"}, "is not found"),
    ({"classes": "[" * 100000}, "its classes, rank or alpha are not readable"),
    ({"classes": "[\"a\"]"}, "its classes do not start with its base's \\(a, b\\)"),
    ({"classes": "[\"a\", \"b\", \"shaker\", \"bell\"]"}, "its class embeddings have shape \\[4, 64\\]"),
])
def test_a_mismatched_adapter_is_refused_in_one_line(tuned, tmp_path, change, message):
    with pytest.raises(UsageError, match=message) as err:
        load_model(altered(tuned / "adapter.safetensors", tmp_path, **change))
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize("edit, message", [
    (lambda w: {**w, "lora.backbone.no.such.layer.lora_down": torch.zeros(8, 4),
                "lora.backbone.no.such.layer.lora_up": torch.zeros(4, 8)}, "its base has no layer 'backbone.no.such"),
    (lambda w: {**w, "net.input_conv.weight": torch.zeros(1)}, "holds 'net.input_conv.weight', which is no part"),
    (lambda w: {k: (torch.full_like(v, float("nan")) if k.endswith("lora_up") else v) for k, v in w.items()},
     "not finite float numbers"),
    (lambda w: {k: v for k, v in w.items() if not k.endswith("lora_up")}, "has only one of its two"),
    (lambda w: {k: (v[:, :1] if k.endswith("lora_down") else v) for k, v in w.items()}, "do not fit a weight"),
    (lambda w: {k: (v.flatten()[0] if k.endswith("lora_up") else v) for k, v in w.items()}, "do not fit a weight"),
    (lambda w: {k: (v.to(torch.int32) if k.endswith("lora_up") else v) for k, v in w.items()}, "finite float"),
    (lambda w: {k: v for k, v in w.items() if k != "classes.embedding"}, "names 3 classes but holds no class"),
])
def test_a_hostile_adapter_is_refused_in_one_line(tuned, tmp_path, edit, message):
    weights = edit(load_file(str(tuned / "adapter.safetensors")))
    with pytest.raises(UsageError, match=message) as err:
        load_model(altered(tuned / "adapter.safetensors", tmp_path, weights=weights))
    assert len(str(err.value).splitlines()) == 1


# --- kept takes close the loop: generate -> keep -> finetune -> generate -------------------------
def test_kept_takes_are_labelled_by_their_names_or_recipes(tmp_path):
    from diffusionkit.training.kept_takes import class_of

    recipe = {"classes": ["kick", "snare", "open_hat"], "command": {"label": "auto"}, "label_inferred": "snare"}
    assert class_of(Path("take003_000_kick.wav"), recipe) == "kick"
    assert class_of(Path("007_open_hat.wav"), recipe) == "open_hat"
    assert class_of(Path("variation_000.wav"), recipe) == "snare"  # vary label=auto: what the model heard
    assert class_of(Path("variation_000.wav"), {**recipe, "label_inferred": None, "command": {"label": 1}}) == "snare"
    assert class_of(Path("variation_000.wav"), {"classes": ["kick"], "command": {"label": None}}) is None


def test_generate_keep_finetune_generate(base, tmp_path, capsys):
    made = tmp_path / "made"
    generate(base, made, "n=4")  # 000_a, 001_b, 002_a, 003_b beside recipe.yaml
    kept = tmp_path / "kept" / "my_pack"
    kept.mkdir(parents=True)
    for path in sorted(made.glob("0*.npy")):
        (kept / f"take001_{path.name}").write_bytes(path.read_bytes())
    (kept / "take001_recipe.yaml").write_text((made / "recipe.yaml").read_text())
    (kept / "take002_variation_000.npy").write_bytes(next(made.glob("0*.npy")).read_bytes())  # no recipe: skipped
    out = tmp_path / "tuned"
    assert main(["finetune", f"ckpt={base}", "data=kept", f"data.dataset.root={kept.parent}", *FAST, "steps=2",
                 f"out={out}"]) == 0
    assert "4 files, classes a, b (new: none)" in capsys.readouterr().out
    generate(out / "adapter.safetensors", tmp_path / "again", "label=b")


def test_an_adapter_is_not_a_base_to_finetune(tuned, tmp_path, capsys):
    folder = user_folder(tmp_path / "kit", {"a": 5})
    assert main(["finetune", f"ckpt={tuned / 'adapter.safetensors'}", "data=folder", f"data.dataset.root={folder}",
                 *FAST, f"out={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "is an adapter; fine-tune its base" in err
    assert not (tmp_path / "out").exists()


def test_finetune_trains_in_the_precision_asked_and_refuses_an_unknown_one(base, tmp_path, capsys):
    folder = user_folder(tmp_path / "kit", {"a": 5})
    assert main(["finetune", f"ckpt={base}", "data=folder", f"data.dataset.root={folder}", *FAST,
                 "precision=fp16", f"out={tmp_path / 'bad'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "precision" in err and "fp32" in err
    assert main(["finetune", f"ckpt={base}", "data=folder", f"data.dataset.root={folder}", *FAST,
                 "precision=fp32", f"out={tmp_path / 'out'}"]) == 0
    assert yaml.safe_load((tmp_path / "out" / "recipe.yaml").read_text())["result"]["precision"] == "32-true"


def test_finetune_takes_the_augmentations_named_on_the_command_line(base, tmp_path):
    folder = user_folder(tmp_path / "kit", {"a": 5})
    assert main(["finetune", f"ckpt={base}", "data=folder", f"data.dataset.root={folder}", *FAST,
                 "augmentations=none", f"out={tmp_path / 'out'}"]) == 0
    assert yaml.safe_load((tmp_path / "out" / "recipe.yaml").read_text())["command"]["augmentations"] == "none"


def test_an_adapter_with_new_classes_keeps_its_bases_recogniser_and_names_what_it_cannot_hear(base, tmp_path,
                                                                                              capsys):
    from safetensors import safe_open

    from diffusionkit.evaluation import Classifier
    from diffusionkit.recognizer import recognizer_entries

    hears_b = Classifier(2, 1, len(CLASSES), width=4)
    with torch.no_grad():
        hears_b.head.weight.zero_()
        hears_b.head.bias.copy_(torch.tensor([0.0, 5.0]))
    weights, extra = recognizer_entries(hears_b, {"width": 4, "grid": 4})
    with safe_open(str(base), framework="pt") as f:
        metadata = f.metadata()
    recognising = tmp_path / "base" / "model.safetensors"
    recognising.parent.mkdir()
    save_file({**load_file(str(base)), **weights}, str(recognising), metadata={**metadata, **extra})
    folder = user_folder(tmp_path / "kit", {"a": 5, "shaker": 5})
    assert main(["finetune", f"ckpt={recognising}", "data=folder", f"data.dataset.root={folder}", *FAST,
                 f"out={tmp_path / 'tuned'}"]) == 0
    adapter = tmp_path / "tuned" / "adapter.safetensors"
    loaded = load_model(adapter)
    assert loaded.classes == ["a", "b", "shaker"] and loaded.unrecognized_classes == ["shaker"]
    assert loaded.recognize(torch.zeros(2, 1, 16, 16)).tolist() == [1, 1]  # the base's recogniser, not the model's guess
    np.save(tmp_path / "in.npy", np.zeros((1, 16, 16), np.float32))
    capsys.readouterr()
    assert main(["vary", f"ckpt={adapter}", f"input={tmp_path / 'in.npy'}", "n=1", "steps=2", "label=auto",
                 f"out={tmp_path / 'vary'}"]) == 0
    line = capsys.readouterr().out
    assert "hears the input as 'b'" in line and "never names shaker: give label=shaker" in line
    assert main(["recognizer", f"ckpt={adapter}", f"out={tmp_path / 'rec'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is an adapter" in err and "merge=true" in err and len(err.splitlines()) == 1


def test_a_folder_named_as_a_base_class_in_another_case_or_plural_is_that_class(base, tmp_path, capsys):
    from diffusionkit.apps.evaluate_real import labelled_items
    from diffusionkit.names import known_class_named

    assert known_class_named("Kick", ["kick", "snare"]) == "kick"
    assert known_class_named("Snares", ["kick", "snare"]) == "snare"
    assert known_class_named("Closed Hat", ["closed_hat"]) == "closed_hat"
    assert known_class_named("bass", ["bas"]) is None and known_class_named("shaker", ["kick"]) is None
    items = [{"x": torch.zeros(1, 4, 4), "label": torch.tensor(i % 2)} for i in range(4)]

    class Folder(list):
        classes = ["Kick", "shaker"]

    real = labelled_items(Folder(items), ["kick", "snare"], "data Folder")  # recognizer and evaluate read so
    assert real.labels.tolist() == [0, 0] and real.unknown_classes == {"shaker": 2}
    folder = user_folder(tmp_path / "kit", {"A": 5, "shaker": 5})
    assert main(["finetune", f"ckpt={base}", "data=folder", f"data.dataset.root={folder}", *FAST,
                 f"out={tmp_path / 'tuned'}"]) == 0
    out = capsys.readouterr().out
    assert "note: 'A' is the base class 'a' (names match ignoring case" in out
    assert load_model(tmp_path / "tuned" / "adapter.safetensors").classes == ["a", "b", "shaker"]


def test_the_report_counts_files_and_items_where_a_long_file_gives_several(capsys):
    from types import SimpleNamespace

    from diffusionkit.apps.finetune import print_report

    report = {"items": 8, "read_files": 6, "classes": ["a", "b"], "new_classes": [], "new_classes_started_from": {},
              "seconds": 3.0, "files": {}, "sizes_mb": {}, "forgetting": None}
    print_report(report, SimpleNamespace(method="lora", steps=2))
    assert capsys.readouterr().out.startswith("finetune (lora): 6 files (8 items), classes a, b (new: none), ")
    print_report({**report, "read_files": 8}, SimpleNamespace(method="lora", steps=2))
    assert capsys.readouterr().out.startswith("finetune (lora): 8 files, classes a, b")


def test_the_few_files_warning_counts_files_not_the_items_a_long_file_gives(monkeypatch, capsys):
    from types import SimpleNamespace

    import diffusionkit.apps.finetune as finetune

    class LongFiles:  # 2 files of class "a" giving 3 items each, 5 files of "b"
        classes = ["a", "b"]
        files = ["a1", "a1", "a1", "a2", "a2", "a2", "b1", "b2", "b3", "b4", "b5"]

        def __len__(self) -> int:
            return len(self.files)

        def __getitem__(self, i: int) -> dict:
            return {"x": torch.zeros(1, 4), "label": 0 if self.files[i].startswith("a") else 1}

    monkeypatch.setattr(finetune, "real_dataset", lambda base, data: LongFiles())
    x, labels, classes, files = finetune.samples(SimpleNamespace(classes=["a", "b"]), None)
    assert (len(labels), files, classes) == (11, 7, ["a", "b"])
    assert capsys.readouterr().err.strip() == ("warning: few files to learn from: 2 a (at least 5 per class learn "
                                               "better)")
