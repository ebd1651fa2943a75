"""A bundle from elsewhere is data: every attack below would write a marker file if it ran.

Each attack is a bundle (or checkpoint) whose config names something to build. The suite asserts
that loading refuses it in one line naming the bundle and the offending entry, before anything is
built (the marker never appears), and, for a few, that the payload is live: Hydra itself would run
it if the config were instantiated unchecked (so these tests can fail).
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from safetensors.torch import save_file

from diffusionkit.bundle import FORMAT, load_model
from diffusionkit.cli import main
from diffusionkit.errors import UsageError
from diffusionkit.trusted_targets import check_config, check_target


class WritesMarker:
    """Unpickling this touches ``path`` (a pickle that runs code)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def attacks(marker: Path, pickle_file: Path) -> dict[str, dict]:
    """Config fragments an attacker could put in a bundle, by name."""
    touch = f"touch {marker}"
    loads = {"_args_": [str(pickle_file)], "weights_only": False}
    return {
        "torch.load through a core module": {"_target_": "diffusionkit.bundle.torch.load", **loads},
        "torch.load through a torch.nn module": {"_target_": "torch.nn.modules.module.torch.load", **loads},
        "torch.load by name": {"_target_": "torch.load", **loads},
        "torch.jit.load": {"_target_": "torch.jit.load", "_args_": [str(pickle_file)]},
        "hub download through a core module": {
            "_target_": "diffusionkit.bundle.torch.hub.load_state_dict_from_url",
            "url": f"file://{pickle_file}", "weights_only": False},
        "os.system through the cli": {"_target_": "diffusionkit.cli.os.system", "_args_": [touch]},
        "os.system": {"_target_": "os.system", "command": touch},
        "subprocess": {"_target_": "subprocess.run", "args": ["touch", str(marker)]},
        "builtins.exec": {"_target_": "builtins.exec", "_args_": [f"open('{marker}', 'w')"]},
        "a function's globals": {"_target_": "diffusionkit.nets.unet.UNet.__init__.__globals__.os.system",
                                 "_args_": [touch]},
        "a core function that writes files": {"_target_": "diffusionkit.bundle.save_bundle",
                                              "path": str(marker), "weights": {}, "metadata": {},
                                              "_convert_": "all"},
        "a method of a trusted class": {"_target_": "lightning.pytorch.LightningModule.load_from_checkpoint",
                                        "checkpoint_path": str(pickle_file), "weights_only": False},
        "positional arguments to a registered class": {"_target_": "diffusionkit.nets.unet.UNet",
                                                       "_args_": [touch]},
        "an interpolated target": {"_target_": "${oc.env:DK_EVIL_TARGET}", "command": touch},
        "an interpolated option": {"_target_": "diffusionkit.diffusion.noise.GaussianNoise",
                                   "secret": "${oc.env:HOME}"},
        "a string _partial_": {"_target_": "diffusionkit.nets.unet.UNet", "_partial_": "yes"},
        "an unknown _convert_": {"_target_": "diffusionkit.nets.unet.UNet", "_convert_": "eval"},
        "an unknown hydra key": {"_target_": "diffusionkit.nets.unet.UNet", "_set_flags_": {"x": 1}},
        "hydra's own instantiate": {"_target_": "hydra.utils.instantiate", "config": {"_target_": "os.system"}},
        "a plugin's dataset as the modality": {
            "_target_": "diffusionkit_toy.datasets.ToyBlobs", "channels": 1, "spatial_size": [100_000]},
        "a dataset that reads the user's files as the modality": {
            "_target_": "diffusionkit.training.folder_dataset.FolderDataset", "root": "~"},
        "a layer as the modality": {"_target_": "torch.nn.Linear", "in_features": 20000, "out_features": 20000},
        "a target inside the modality's options": {
            "_target_": "diffusionkit_toy.modality.ToyModality",
            "codec_options": {"_target_": "diffusionkit_toy.datasets.ToyBlobs", "channels": 1,
                              "spatial_size": [100_000]}},
        "nested in a list": {"_target_": "diffusionkit.diffusion.noise.GaussianNoise",
                             "parts": [{"ok": 1}, {"_target_": "os.system", "command": touch}]},
    }


@pytest.fixture
def payload(tmp_path, monkeypatch):
    """The marker path, a pickle that touches it when loaded, and the attacks."""
    marker = tmp_path / "CODE_RAN"
    pickle_file = tmp_path / "evil.pkl"
    with pickle_file.open("wb") as f:
        pickle.dump(WritesMarker(marker), f)
    monkeypatch.setenv("DK_EVIL_TARGET", "os.system")
    return marker, pickle_file, attacks(marker, pickle_file)


def write_bundle(path: Path, fragment: dict, where: str = "modality") -> Path:
    config = OmegaConf.to_yaml(OmegaConf.create({where: fragment, "net": {"_target_": "diffusionkit.nets.unet.UNet"}}))
    save_file({"net.w": torch.zeros(1)}, str(path), metadata={"format": FORMAT, "config": config, "classes": "[]"})
    return path


ATTACK_NAMES = list(attacks(Path("m"), Path("p")))


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_a_hostile_bundle_is_refused_in_one_line_and_runs_nothing(payload, tmp_path, name):
    marker, _, cases = payload
    bundle = write_bundle(tmp_path / "evil.safetensors", cases[name])
    with pytest.raises(UsageError) as refused:
        load_model(bundle)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"bundle '{bundle}': refusing to load it: ")
    assert "at modality" in message
    assert not marker.exists()


@pytest.mark.parametrize("name", ["torch.load through a core module", "torch.load through a torch.nn module",
                                  "torch.load by name", "a core function that writes files"])
def test_the_payloads_are_live_when_instantiated_unchecked(payload, name):
    """What the check stands between: Hydra's instantiate runs these configs (its own blocklist
    stops only ``os.system`` and a few others)."""
    marker, _, cases = payload
    try:
        instantiate(OmegaConf.create(cases[name]))
    except Exception:  # the payload's return value may not suit hydra; the side effect is what counts
        pass
    assert marker.exists()


@pytest.mark.parametrize("command", [["generate", "n=1"], ["vary", "input={input}"], ["evaluate"]])
def test_every_command_refuses_the_bundle_before_writing(payload, tmp_path, capsys, command):
    marker, _, cases = payload
    (tmp_path / "x.wav").write_bytes(b"RIFF")
    command = [part.format(input=tmp_path / "x.wav") for part in command]
    bundle = write_bundle(tmp_path / "evil.safetensors", cases["torch.load through a core module"])
    out = tmp_path / "out"
    assert main([command[0], f"ckpt={bundle}", f"out={out}", *command[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "diffusionkit.bundle.torch.load" in err and "passes through module 'torch'" in err
    assert not marker.exists() and not out.exists()


def test_a_checkpoint_with_a_hostile_config_is_refused(payload, tmp_path):
    marker, _, cases = payload
    config = OmegaConf.to_yaml(OmegaConf.create({"modality": cases["os.system"]}))
    path = tmp_path / "evil.ckpt"
    torch.save({"diffusionkit": {"format": FORMAT, "config": config, "classes": "[]"}, "state_dict": {}}, path)
    with pytest.raises(UsageError, match="'os.system' is outside diffusionkit"):
        load_model(path)
    assert not marker.exists()


def test_yaml_tags_in_a_bundle_config_are_not_constructed(tmp_path):
    marker = tmp_path / "CODE_RAN"
    path = tmp_path / "evil.safetensors"
    config = f"modality: !!python/object/apply:os.system ['touch {marker}']\n"
    save_file({"net.w": torch.zeros(1)}, str(path), metadata={"format": FORMAT, "config": config, "classes": "[]"})
    with pytest.raises(UsageError, match="holds an unreadable config") as refused:
        load_model(path)
    assert "\n" not in str(refused.value)
    assert not marker.exists()


def test_a_hostile_autoencoder_bundle_is_refused_by_train(payload, tmp_path, capsys):
    marker, _, cases = payload
    path = tmp_path / "ae.safetensors"
    config = OmegaConf.to_yaml(OmegaConf.create({"first_stage": {"net": cases["os.system through the cli"]}}))
    save_file({"autoencoder.w": torch.zeros(1)}, str(path),
              metadata={"format": FORMAT, "kind": "autoencoder", "config": config, "classes": "[]",
                        "scale_factor": "1.0"})
    out = tmp_path / "run"
    assert main(["train", "modality=toy", "data=toy_blobs", "autoencoder=pretrained", f"autoencoder.bundle={path}",
                 "trainer.max_steps=1", f"out={out}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "passes through module 'os'" in err
    assert not marker.exists()


@pytest.mark.parametrize("target", ["diffusionkit.nets.unet.UNet", "diffusionkit_toy.modality.ToyModality",
                                    "torch.nn.Conv2d", "torch.optim.SGD", "torch.optim.lr_scheduler.StepLR",
                                    "lightning.pytorch.loggers.CSVLogger", "lightning.pytorch.Trainer"])
def test_registered_constructors_and_layer_classes_are_allowed(target):
    check_target(target)


def test_an_alias_of_a_registered_class_is_allowed_by_identity(tmp_path):
    """``diffusionkit.nets.unet`` imports nothing else as ``UNet``: an alias that resolves to the
    registered object itself passes (compared by identity, not by name)."""
    import diffusionkit.nets as nets

    if not hasattr(nets, "UNet"):
        pytest.skip("diffusionkit.nets re-exports no UNet")
    check_target("diffusionkit.nets.UNet")


def test_a_legitimate_run_config_passes(tmp_path):
    from diffusionkit.config import compose_config

    cfg = compose_config("train", ["modality=toy", "data=toy_blobs", "optim=adamw_cosine", "logger=csv"])
    check_config(OmegaConf.to_container(cfg, resolve=True), "run")


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    from diffusionkit.build import build_diffusion_model, build_modality
    from diffusionkit.bundle import diffusion_weights, run_metadata, save_bundle
    from diffusionkit.config import compose_config

    cfg = compose_config("train", ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16",
                                   "net.attention_levels=[]", "modality.channels=1", "modality.spatial_size=[16,16]"])
    module = build_diffusion_model(cfg, build_modality(cfg), num_classes=0)
    folder = tmp_path_factory.mktemp("tiny")
    return save_bundle(folder / "model.safetensors", diffusion_weights(module), run_metadata(cfg, []))


def with_config(source: Path, target: Path, **changes: object) -> Path:
    """A copy of ``source`` whose config has ``changes`` (dotted keys) applied."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(source), framework="pt") as f:
        metadata = dict(f.metadata())
    config = OmegaConf.create(metadata["config"])
    for key, value in changes.items():
        OmegaConf.update(config, key, value, merge=False)
    metadata["config"] = OmegaConf.to_yaml(config)
    save_file(load_file(str(source)), str(target), metadata=metadata)
    return target


def test_a_bundle_asking_for_a_huge_network_is_refused_before_allocating_it(tiny_bundle, tmp_path):
    """1e5 channels would be terabytes of weights: the shapes are compared on the meta device."""
    evil = with_config(tiny_bundle, tmp_path / "huge_net.safetensors", **{"net.model_channels": 100_000})
    fits = r"do not fit its config: net\.[a-z_.0-9]+ holds shape \[\d+\], the config.s model needs shape \[200000\]"
    with pytest.raises(UsageError, match=fits):
        load_model(evil)


def test_a_bundle_asking_for_huge_items_is_refused(tiny_bundle, tmp_path):
    evil = with_config(tiny_bundle, tmp_path / "huge_items.safetensors", **{"modality.spatial_size": [100_000, 100_000]})
    with pytest.raises(UsageError, match=r"its items have shape \[1, 100000, 100000\] \(10,000,000,000 values\)"):
        load_model(evil)


@pytest.mark.parametrize("changes, detail", [
    ({"diffusion.prediction": "nosuch"}, "unknown prediction 'nosuch'"),
    ({"diffusion.clip_denoised": "abc"}, "could not convert string to float"),
    ({"net.model_channels": 0}, "model_channels must be at least 1, got 0"),
])
def test_a_bundle_whose_values_cannot_build_a_model_is_one_line(tiny_bundle, tmp_path, changes, detail):
    damaged = with_config(tiny_bundle, tmp_path / "damaged.safetensors", **changes)
    with pytest.raises(UsageError) as err:
        load_model(damaged)
    message = str(err.value)
    assert message.splitlines() == [message] and detail in message
    assert "the file is damaged or was written by another version" in message or "(check the net.* options)" in message


@pytest.mark.parametrize("where, value", [("modality", 5), ("net", [1, 2]), ("diffusion.schedule", "cosine")])
def test_a_place_that_builds_a_part_must_hold_a_mapping(tiny_bundle, tmp_path, where, value):
    damaged = with_config(tiny_bundle, tmp_path / "scalar.safetensors", **{where: value})
    with pytest.raises(UsageError) as err:
        load_model(damaged)
    message = str(err.value)
    assert message.splitlines() == [message]
    assert f"refusing to load it: {where} holds {value!r}, where a " in message and "mapping with a _target_" in message


def test_a_bundle_with_nan_weights_is_one_line(tiny_bundle, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    weights = load_file(str(tiny_bundle))
    name = next(k for k in sorted(weights) if k.startswith("net.") and weights[k].is_floating_point())
    weights[name] = torch.full_like(weights[name], float("nan"))
    with safe_open(str(tiny_bundle), framework="pt") as f:
        metadata = dict(f.metadata())
    damaged = tmp_path / "nan.safetensors"
    save_file(weights, str(damaged), metadata=metadata)
    with pytest.raises(UsageError, match=rf"hold NaN or infinite values \({re.escape(name)}\): the file is damaged"):
        load_model(damaged)


def test_the_unchanged_tiny_bundle_loads(tiny_bundle):
    assert load_model(tiny_bundle).modality.shape == (1, 16, 16)


@pytest.mark.parametrize("name, reason", [
    ("a plugin's dataset as the modality", "'diffusionkit_toy.datasets.ToyBlobs' is not a Modality, which is what "
                                           "is built there"),
    ("a layer as the modality", "'torch.nn.Linear' is not a Modality"),
    ("a target inside the modality's options", "_target_ at modality.codec_options: nothing is built there"),
])
def test_each_place_builds_only_its_own_kind(payload, tmp_path, name, reason):
    """An allowed class is still refused where it does not belong (a dataset writing its cache
    elsewhere, a 1.6 GB layer, anything nested in a modality's options)."""
    _, _, cases = payload
    with pytest.raises(UsageError, match=reason.replace("[", "\\[").replace(".", "\\.")):
        load_model(write_bundle(tmp_path / "evil.safetensors", cases[name]))


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_a_hostile_conditioner_is_refused_and_runs_nothing(payload, tmp_path, name):
    """``conditioners.<name>`` is a place a bundle builds, so every attack is tried there too."""
    marker, _, cases = payload
    with pytest.raises(UsageError) as err:
        load_model(write_bundle(tmp_path / "evil.safetensors", {"loudness": cases[name]}, where="conditioners"))
    assert len(str(err.value).splitlines()) == 1 and not marker.exists()


@pytest.mark.parametrize("fragment, reason", [
    ({"_target_": "torch.nn.Linear", "in_features": 2, "out_features": 2}, "'torch.nn.Linear' is not a Conditioner"),
    ({"_target_": "tests.test_conditioners.Loudness"}, "is outside diffusionkit, its installed plugins"),
    ({"x": {"_target_": "diffusionkit.nets.conditioners.ScalarEmbedding"}}, "conditioners.loudness.x: nothing is built"),
])
def test_a_conditioner_must_be_a_registered_conditioner(tmp_path, fragment, reason):
    with pytest.raises(UsageError, match=reason.replace(".", "\\.")):
        load_model(write_bundle(tmp_path / "evil.safetensors", {"loudness": fragment}, where="conditioners"))


@pytest.mark.parametrize("overrides", [
    ["modality=toy", "data=toy_blobs", "trainer=fsdp", "logger=csv"],
    ["modality=toy_1d", "data=toy_blobs", "noise=mixed", "augment=default"],
    ["modality=toy", "data=toy_blobs", "experiment=digits_autoencoder"],
    ["modality=toy", "data=toy_blobs", "first_stage=patchgan", "stage=autoencoder", "optim=adamw_cosine"],
    ["modality=toy", "data=toy_blobs", "+conditioners@conditioners.loudness=scalar"],
])
def test_the_configs_the_project_composes_pass_the_bundle_check(overrides):
    """Every place a real run config builds something is one the check knows (else every bundle
    of that kind would be refused). Each plugin's own options are checked by the contract kit."""
    from diffusionkit.config import compose_config

    check_config(OmegaConf.to_container(compose_config("train", overrides), resolve=True), "run")


def test_yaml_aliases_are_refused_before_they_expand(tmp_path):
    """A "billion laughs" of nested aliases: 2.5 KB of config that would take minutes to expand."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    path = tmp_path / "laughs.safetensors"
    save_file({"net.w": torch.zeros(1)}, str(path),
              metadata={"format": FORMAT, "config": "\n".join(lines) + "\n", "classes": "[]"})
    with pytest.raises(UsageError, match="holds a config with YAML anchors or aliases"):
        load_model(path)


def test_a_huge_class_list_is_refused_at_once(tmp_path):
    path = tmp_path / "classes.safetensors"
    save_file({"net.w": torch.zeros(1)}, str(path), metadata={
        "format": FORMAT, "config": "net: {}\n", "classes": json.dumps([f"c{i}" for i in range(60_000)])})
    with pytest.raises(UsageError, match="60,000 classes, more than the 10,000 a model may have"):
        load_model(path)


@pytest.mark.parametrize("checkpoint, message", [
    ({"diffusionkit": ["format"], "state_dict": {}}, "metadata is not a mapping of names to text"),
    ({"diffusionkit": {"format": FORMAT, "config": "{}", "classes": ["a"]}, "state_dict": {}},
     "metadata is not a mapping of names to text"),
    ({"diffusionkit": {"format": FORMAT, "config": "{}", "classes": "[]"}, "state_dict": [1, 2]},
     "its state_dict is not a mapping of names to tensors"),
    ({"diffusionkit": {"format": FORMAT, "config": "{}", "classes": "[]"}, "state_dict": {1: torch.zeros(1)}},
     "its state_dict is not a mapping of names to tensors"),
])
def test_a_checkpoint_of_the_wrong_structure_is_one_line(tmp_path, checkpoint, message):
    path = tmp_path / "odd.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(UsageError, match=message) as refused:
        load_model(path)
    assert "\n" not in str(refused.value)


def test_media_options_cannot_name_something_to_build(tiny_bundle, tmp_path):
    marker = tmp_path / "PWNED"
    options = {"channels": {"_target_": "diffusionkit.bundle.save_bundle", "path": str(marker), "weights": {},
                            "metadata": {}, "_convert_": "all"}}
    with pytest.raises(UsageError, match="nothing is built there"):
        load_model(tiny_bundle).with_media(options)
    assert not marker.exists()


def test_a_bundle_asking_for_a_huge_schedule_is_one_line(tiny_bundle, tmp_path, capsys):
    """150 M steps would take 7 GB and a minute to tabulate."""
    evil = with_config(tiny_bundle, tmp_path / "steps.safetensors", **{"diffusion.schedule.num_timesteps": 150_000_000})
    assert main(["generate", f"ckpt={evil}", "n=1", f"out={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "num_timesteps must be from 2 to 100000, got 150000000" in err and "\n" not in err
