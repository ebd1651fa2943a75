"""The model without Lightning (issue 14): sampling commands import no Lightning, ``device=`` and
``precision=`` reach the model and the recipe, one Parameterization object serves training and
sampling, and checkpoints written before the split still load and resume."""

from __future__ import annotations

import copy

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from diffusionkit.apps.run_folder import check_weights_fit
from diffusionkit.bundle import load_model
from diffusionkit.cli import main
from diffusionkit.commands import run_command
from diffusionkit.devices import resolve_device, resolve_precision
from diffusionkit.diffusion.denoiser import VPDenoiser
from diffusionkit.diffusion.model import DiffusionModel, model_state, trainer_state
from diffusionkit.diffusion.objectives import PARAMETERIZATIONS, Parameterization, VPrediction, parameterization
from diffusionkit.diffusion.schedules import NoiseSchedule
from diffusionkit.errors import UsageError
from tests.test_diffusion_module import tiny_model, tiny_module
from tests.untrained_bundle import untrained_bundle

CLASSES = ["zero", "one", "two"]
TINY = ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16", "net.attention_levels=[]",
        "modality.channels=1", "modality.spatial_size=[16,16]"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return untrained_bundle(TINY, CLASSES, tmp_path_factory.mktemp("model"))


# --- no Lightning on the sampling path -------------------------------------------------------

IMPORTS_AFTER = """
import sys
from diffusionkit.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "lightning" or m == "diffusionkit.training.diffusion_module")
print("LOADED", loaded, "EXIT", code)
"""


@pytest.mark.parametrize("command", ["generate", "vary"])
def test_a_sampling_command_imports_no_lightning(bundle, tmp_path, command):
    extra = [f"input={tmp_path / 'in.npy'}"] if command == "vary" else []
    if extra:
        run_command("generate", [f"ckpt={bundle}", f"out={tmp_path / 'in'}", "n=1", "steps=1", "label=one"])
        (tmp_path / "in" / "000_one.npy").rename(tmp_path / "in.npy")
    argv = [command, f"ckpt={bundle}", f"out={tmp_path / 'out'}", "n=1", "steps=2", *extra]
    done = subprocess.run([sys.executable, "-c", IMPORTS_AFTER, *argv], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "LOADED [] EXIT 0"


# --- device= and precision= ------------------------------------------------------------------

def generate(bundle: Path, out: Path, *overrides: str) -> Path:
    return run_command("generate", [f"ckpt={bundle}", f"out={out}", "n=3", "steps=3", "seed=5", *overrides])


def test_the_same_seed_on_the_same_device_writes_the_same_files(bundle, tmp_path):
    first = generate(bundle, tmp_path / "a", "device=cpu")
    second = generate(bundle, tmp_path / "b", "device=cpu")
    other = generate(bundle, tmp_path / "c", "device=cpu", "seed=6")
    files = sorted(p.name for p in first.glob("*.npy"))
    assert files == ["000_zero.npy", "001_one.npy", "002_two.npy", "grid.npy"]
    assert all((first / name).read_bytes() == (second / name).read_bytes() for name in files)
    assert (first / "000_zero.npy").read_bytes() != (other / "000_zero.npy").read_bytes()
    recipe = yaml.safe_load((first / "recipe.yaml").read_text())
    assert (recipe["device"], recipe["precision"]) == ("cpu", resolve_precision("auto", torch.device("cpu")))
    assert (recipe["command"]["device"], recipe["command"]["precision"]) == ("cpu", "auto")


def test_bf16_precision_runs_the_net_under_autocast_and_is_recorded(bundle, tmp_path):
    out = generate(bundle, tmp_path / "bf16", "device=cpu", "precision=bf16")
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert (recipe["device"], recipe["precision"]) == ("cpu", "bf16")
    model = load_model(bundle, precision="bf16").module
    assert model.autocast_dtype == torch.bfloat16 and model.denoiser().autocast == torch.bfloat16
    seen = []
    model.sampling_net.register_forward_hook(lambda m, a, out: seen.append((out.dtype, torch.is_autocast_enabled("cpu"))))
    x = model.sample(1, torch.tensor([1]), steps=2)
    assert x.dtype == torch.float32 and seen and all(s == (torch.bfloat16, True) for s in seen)


def test_sampling_stores_conv_weights_channels_last_in_either_precision_and_samples_the_same(bundle):
    def layouts(net: torch.nn.Module) -> set[bool]:
        return {p.is_contiguous(memory_format=torch.channels_last) for p in net.parameters()
                if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1}  # else both layouts at once

    assert layouts(load_model(bundle, precision="bf16").module.sampling_net) == {True}
    model = load_model(bundle, precision="fp32").module
    assert layouts(model.sampling_net) == {True}
    contiguous = copy.deepcopy(model)
    for p in contiguous.parameters():
        p.data = p.data.contiguous()
    assert layouts(contiguous.sampling_net) == {False}
    a, b = (m.sample(2, torch.tensor([0, 1]), steps=3, generator=torch.Generator().manual_seed(0))
            for m in (model, contiguous))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_a_loaded_model_keeps_no_ema_copy_and_samples_with_its_net(bundle):
    model = load_model(bundle).module
    assert model.ema is None and model.sampling_net is model.net
    with pytest.raises(RuntimeError, match="built without an EMA"):
        model.update_ema()
    model.reset_ema()  # fine-tuning starts one
    assert model.sampling_net is model.ema.module and model.sampling_net is not model.net


@pytest.mark.parametrize("avx512_bf16,amx,expected", [(False, False, "fp32"), (True, False, "bf16"),
                                                      (False, True, "bf16")])
def test_auto_precision_is_bf16_only_on_a_cpu_that_computes_it_natively(monkeypatch, avx512_bf16, amx, expected):
    from diffusionkit.training.trainer_options import lightning_precision

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert resolve_precision("auto", torch.device("cpu")) == expected
    assert lightning_precision("auto", "cpu") == {"fp32": "32-true", "bf16": "bf16-mixed"}[expected]
    assert lightning_precision("16-mixed", "cpu") == "16-mixed"  # a preset that names one keeps it


def test_auto_picks_cuda_only_where_there_is_one(bundle, tmp_path):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    out = generate(bundle, tmp_path / "auto")
    assert yaml.safe_load((out / "recipe.yaml").read_text())["device"].startswith(expected)


@pytest.mark.parametrize("option, message", [
    ("device=tpu", "unknown device 'tpu'; choose device= auto, cpu, cuda or cuda:N"),
    ("device=7", "unknown device '7'; choose device= auto, cpu, cuda or cuda:N"),
    ("precision=fp16", "unknown precision 'fp16'; choose precision= one of: auto, fp32, bf16"),
    ("device=cuda:99", "device=cuda:99: this machine has no such CUDA device"),
])
@pytest.mark.parametrize("command", ["generate", "evaluate", "studio"])
def test_an_unknown_device_or_precision_is_one_line(bundle, tmp_path, capsys, option, message, command):
    if command == "studio" and option == "device=cuda:99":
        pytest.skip("the studio loads its model only once gradio is there; the device is checked at load")
    assert main([command, f"ckpt={bundle}", f"out={tmp_path / 'x'}", option]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err
    assert not (tmp_path / "x").exists()


def test_load_model_refuses_a_missing_cuda_device_in_one_line(bundle):
    with pytest.raises(UsageError, match=r"device=cuda:99: this machine has no such CUDA device .*use device=auto"):
        load_model(bundle, device="cuda:99")


# --- one parameterization --------------------------------------------------------------------

def test_each_prediction_name_is_one_registered_object():
    assert set(PARAMETERIZATIONS) == {"eps", "x0", "v"}
    assert all(parameterization(name).name == name for name in PARAMETERIZATIONS)
    v = VPrediction()
    assert parameterization(v) is v
    with pytest.raises(ValueError, match="unknown prediction 'score'; choose one of: eps, x0, v"):
        parameterization("score")


def test_training_and_sampling_share_the_model_parameterization():
    model = tiny_model(prediction="v")
    assert isinstance(model.parameterization, VPrediction) and model.prediction == "v"
    assert model.denoiser().parameterization is model.parameterization


def test_a_parameterization_object_not_in_the_registry_serves_training_and_sampling():
    class Halved(Parameterization):
        """x0-prediction of half the data (a made-up kind: only the object knows it)."""

        name = "half_x0"

        def target(self, x0, eps, alpha, sigma):
            return x0 / 2

        def x0(self, output, x_t, alpha, sigma):
            return 2 * output

        def min_snr_weight(self, snr, gamma):
            return snr.clamp(max=gamma)

    model = tiny_model(2, 8, prediction=Halved())
    assert torch.isfinite(model.loss({"x": torch.randn(2, 1, 8, 8), "label": torch.tensor([0, 1])}))
    denoiser = VPDenoiser(lambda x, t, **cond: torch.full_like(x, 0.25), NoiseSchedule("linear"), Halved())
    assert torch.equal(denoiser(torch.zeros(1, 1, 4), torch.ones(1)), torch.full((1, 1, 4), 0.5))


def test_training_noises_with_the_schedule_add_noise(monkeypatch):
    model = tiny_model(2, 8)
    calls = []
    add_noise = NoiseSchedule.add_noise
    monkeypatch.setattr(NoiseSchedule, "add_noise", lambda self, *a: calls.append(a[2]) or add_noise(self, *a))
    model.loss({"x": torch.randn(3, 1, 8, 8), "label": torch.tensor([0, 1, 0])})
    assert len(calls) == 1 and calls[0].shape == (3,)


# --- checkpoints written before the split ----------------------------------------------------

def old_checkpoint_state(module) -> dict[str, torch.Tensor]:
    """What the same trainer's checkpoint held before the model was split out (no ``model.``) and
    before conditioners were parts (the backbone's names bare, the class embedding its own)."""
    renamed = {}
    for key, value in module.state_dict().items():
        key = key.removeprefix("model.").replace(".backbone.", ".")
        key = key.replace(".conditioners.label.embedder.embedding.weight", ".class_embed.embedding.weight")
        renamed[key] = value.clone()
    return renamed


def test_an_old_lightning_checkpoint_resumes_into_the_thin_trainer(tmp_path):
    source, target = tiny_module(2, 8), tiny_module(2, 8)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)
    checkpoint = {"state_dict": old_checkpoint_state(source)}
    assert "net.input_conv.weight" in checkpoint["state_dict"] and "ema.n_averaged" in checkpoint["state_dict"]
    assert "ema.module.class_embed.embedding.weight" in checkpoint["state_dict"]
    path = tmp_path / "old.ckpt"
    torch.save(checkpoint, path)
    check_weights_fit(target, path)  # the resume check reads it as Lightning will
    target.on_load_checkpoint(checkpoint)
    target.load_state_dict(checkpoint["state_dict"])
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())


def test_state_names_map_both_ways():
    state = tiny_module(1, 8).state_dict()
    old = model_state(state)
    assert all(not k.startswith("model.") for k in old) and "ema.module.backbone.input_conv.weight" in old
    assert trainer_state(old).keys() == state.keys() and trainer_state(state).keys() == state.keys()
    assert model_state(old).keys() == old.keys()


def test_an_old_and_a_new_checkpoint_load_as_the_same_model(tmp_path):
    from diffusionkit.bundle import CHECKPOINT_KEY, run_metadata
    from diffusionkit.config import compose_config
    from diffusionkit.training.build import build_diffusion_module, build_modality

    cfg = compose_config("train", TINY)
    torch.manual_seed(1)
    module = build_diffusion_module(cfg, build_modality(cfg), num_classes=len(CLASSES))
    metadata = run_metadata(cfg, CLASSES)
    paths = SimpleNamespace(old=tmp_path / "old.ckpt", new=tmp_path / "new.ckpt")
    torch.save({"state_dict": old_checkpoint_state(module), CHECKPOINT_KEY: metadata}, paths.old)
    torch.save({"state_dict": module.state_dict(), CHECKPOINT_KEY: metadata}, paths.new)
    old, new = (load_model(p).module for p in (paths.old, paths.new))
    assert isinstance(old, DiffusionModel)
    assert all(torch.equal(v, new.state_dict()[k]) for k, v in old.state_dict().items())
    torch.testing.assert_close(old.sample(1, torch.tensor([2]), steps=2, generator=torch.Generator().manual_seed(0)),
                               new.sample(1, torch.tensor([2]), steps=2, generator=torch.Generator().manual_seed(0)))


def test_an_old_checkpoints_optimizer_state_follows_each_parameter():
    """Before conditioners were parts, the class embedding was registered right after the time
    embedding: an optimiser's state, kept by position, must move with it on resume."""
    module = tiny_module(2, 8)
    old = old_checkpoint_state(module)
    keys = list(old)
    for prefix in ("net.", "ema.module."):
        table = prefix + "class_embed.embedding.weight"
        keys.remove(table)
        keys.insert(max(i for i, k in enumerate(keys) if k.startswith(prefix + "time_embed.")) + 1, table)
    old_params = [k for k in keys if k.startswith("net.")]
    state = {i: {"exp_avg": torch.zeros(old[name].shape)} for i, name in enumerate(old_params)}
    checkpoint = {"state_dict": {k: old[k] for k in keys},
                  "optimizer_states": [{"state": state, "param_groups": [{"params": list(range(len(state)))}]}]}
    module.on_load_checkpoint(checkpoint)
    now = [p.shape for p in module.model.net.parameters()]
    moved = checkpoint["optimizer_states"][0]["state"]
    assert sorted(moved) == list(range(len(now)))
    assert all(moved[i]["exp_avg"].shape == now[i] for i in range(len(now)))
    assert any(now[i] != state[i]["exp_avg"].shape for i in range(len(now)))  # the old positions did not fit
