"""Conditions as named parts: the class label and a concatenated signal are conditioners, a new one
written here (a scalar "loudness") trains and guides a tiny model through the config alone, and a
net stored before conditioners existed loads under the new names with the same outputs."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor
from torch.utils.data import Dataset

from diffusionkit.config import compose_config
from diffusionkit.diffusion.model import DiffusionModel
from diffusionkit.diffusion.schedules import NoiseSchedule
from diffusionkit.nets.conditioned_net import ConditionedNet, conditioning_widths, upgrade_legacy_names
from diffusionkit.nets.conditioners import CONCAT, ClassLabel, Conditioner, ScalarEmbedding
from diffusionkit.nets.unet import UNet
from diffusionkit.training.build import build_diffusion_module, build_modality
from diffusionkit.training.datamodule import ModalityDataModule


class Loudness(ScalarEmbedding):
    """The root-mean-square level of each item, measured from the clean batch while training."""

    def from_batch(self, batch: dict[str, Tensor]) -> Tensor:
        return rms(batch["x"])


class Edges(Conditioner):
    """A concatenated condition built in a test: the first difference of each item (null: zeros)."""

    kind = CONCAT

    @property
    def width(self) -> int:
        return 1

    def from_batch(self, batch: dict[str, Tensor]) -> Tensor:
        return torch.diff(batch["x"], dim=-1, prepend=batch["x"][..., :1])

    def null_value(self, n: int, item_shape: tuple[int, ...], device: torch.device) -> Tensor:
        return torch.zeros(n, 1, *item_shape[1:], device=device)

    def forward(self, values: Tensor) -> Tensor:
        return values


def rms(x: Tensor) -> Tensor:
    return x.flatten(1).square().mean(1).sqrt()


class Waves(Dataset):
    """Sine waves of one shape at levels spread over [0.1, 0.9]: loudness is what varies."""

    classes: list[str] = []

    def __init__(self, n: int = 512, length: int = 32) -> None:
        levels = torch.linspace(0.1, 0.9, n)
        wave = torch.sin(torch.linspace(0, 4 * math.pi, length)) * math.sqrt(2)  # unit RMS
        self.x = levels[:, None, None] * wave[None, None, :]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"x": self.x[i], "label": torch.tensor(0)}


def tiny_unet(**kw) -> UNet:
    return UNet(1, 1, model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,), num_heads=2,
                **kw)


@torch.no_grad()
def perturb(net: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    for p in net.parameters():
        p.add_(0.1 * torch.randn(p.shape, generator=g))
    return net


# --- the parts ---------------------------------------------------------------------------------
def test_class_label_null_value_drops_and_range():
    label = ClassLabel(4, drop=0.5)
    label.bind(8)
    assert torch.equal(label.null_value(3, (1, 8), torch.device("cpu")), torch.tensor([4, 4, 4]))
    dropped = label.drop_values(torch.tensor([0, 1, 2]), torch.tensor([True, False, True]), (1, 8))
    assert torch.equal(dropped, torch.tensor([4, 1, 4]))
    assert label(torch.tensor([0, 4])).shape == (2, 8)
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        label(torch.tensor([5]))
    with pytest.raises(ValueError, match="drop probability"):
        ClassLabel(4, drop=1.5)


def test_scalar_embedding_takes_nan_as_its_learned_null():
    scalar = ScalarEmbedding(drop=0.2)
    scalar.bind(16)
    with torch.no_grad():
        scalar.null.fill_(3.0)
    out = scalar(torch.tensor([0.5, float("nan")]))
    assert out.shape == (2, 16)
    assert torch.equal(out[1], torch.full((16,), 3.0)) and not torch.equal(out[0], out[1])
    assert not torch.allclose(scalar(torch.tensor([0.2])), scalar(torch.tensor([0.8])))
    scalar.name = "pitch"  # whole numbers from a dataset become floats, so their null stays NaN
    values = scalar.from_batch({"pitch": torch.tensor([60, 62])})
    assert values.dtype == torch.float32
    assert scalar.drop_values(values, torch.tensor([True, False]), (1, 8))[0].isnan()


def test_conditioned_net_sums_vectors_and_concatenates_channels():
    conditioners = {"label": ClassLabel(3), "loudness": ScalarEmbedding(), "edges": Edges()}
    assert conditioning_widths(conditioners) == {"concat_channels": 1, "context_dim": 0}
    torch.manual_seed(0)
    net = perturb(ConditionedNet(tiny_unet(concat_channels=1), conditioners))
    x, t = torch.randn(2, 1, 16), torch.tensor([5, 500])
    values = {"label": torch.tensor([0, 1]), "loudness": torch.tensor([0.2, 0.7]), "edges": torch.randn(2, 1, 16)}
    vector = net.conditioners["label"](values["label"]) + net.conditioners["loudness"](values["loudness"])
    expected = net.backbone(x, t, vector=vector, concat=values["edges"])
    torch.testing.assert_close(net(x, t, **values), expected)
    with pytest.raises(ValueError, match=r"missing \['edges'\], unknown \['sketch'\]"):
        net(x, t, label=values["label"], loudness=values["loudness"], sketch=values["edges"])


def test_a_net_stored_before_conditioners_loads_under_the_new_names():
    torch.manual_seed(0)
    new = perturb(ConditionedNet(tiny_unet(), {"label": ClassLabel(3)}))
    legacy = {("class_embed.embedding.weight" if k == "conditioners.label.embedder.embedding.weight"
               else k.removeprefix("backbone.")): v for k, v in new.state_dict().items()}
    assert "input_conv.weight" in legacy and "class_embed.embedding.weight" in legacy
    assert upgrade_legacy_names(legacy).keys() == new.state_dict().keys()
    assert upgrade_legacy_names(new.state_dict()).keys() == new.state_dict().keys()  # a current one: as it is
    twin = ConditionedNet(tiny_unet(), {"label": ClassLabel(3)})
    twin.load_state_dict(legacy)
    x, t, labels = torch.randn(2, 1, 16), torch.tensor([3, 9]), torch.tensor([2, 3])
    torch.testing.assert_close(twin(x, t, label=labels), new(x, t, label=labels), rtol=0, atol=0)


def test_guidance_acts_on_the_chosen_subset_only():
    model = DiffusionModel(tiny_unet(concat_channels=1), NoiseSchedule("linear"), (1, 16),
                           conditioners={"label": ClassLabel(2, drop=0.1), "edges": Edges(drop=0.0),
                                         "loudness": ScalarEmbedding(drop=0.2)})
    labels, given = torch.tensor([0, 1]), {"edges": torch.randn(2, 1, 16), "loudness": torch.tensor([0.3, 0.6])}
    assert model.guided_conditions(labels, given) == {"label", "loudness"}  # edges: never dropped
    assert model.guided_conditions(labels, given, guide=["loudness"]) == {"loudness"}
    with pytest.raises(ValueError, match="'edges': the model was trained with it always given"):
        model.guided_conditions(labels, given, guide=["edges"])
    with pytest.raises(ValueError, match="'pitch': this model's conditions are"):
        model.guided_conditions(labels, given, guide=["pitch"])
    uncond = model._conditions(2, labels, given, dropped={"loudness"})
    assert torch.equal(uncond["label"], labels) and torch.equal(uncond["edges"], given["edges"])
    assert uncond["loudness"].isnan().all()
    with pytest.raises(ValueError, match="pass edges=FILE"):
        DiffusionModel(tiny_unet(concat_channels=1), NoiseSchedule("linear"), (1, 16),
                       conditioners={"edges": _named_signal()}).sample(1, steps=2)


def _named_signal() -> Conditioner:
    from diffusionkit.nets.conditioners import ConcatSignal

    class Source:
        channels = 1

    return ConcatSignal(Source())


# --- a conditioner from a test file, through the config ---------------------------------------
@pytest.fixture(scope="module")
def loud_model() -> DiffusionModel:
    cfg = compose_config("train", [
        "modality=toy_1d", "data=toy_blobs", "net=unet_small", "net.model_channels=16", "net.channel_mult=[1,2]",
        "net.attention_levels=[]", "net.num_res_blocks=1", "diffusion.prediction=v", "optim.optimizer.lr=3e-3",
        "+conditioners.loudness._target_=tests.test_conditioners.Loudness", "+conditioners.loudness.drop=0.2",
    ])
    torch.manual_seed(0)
    module = build_diffusion_module(cfg, build_modality(cfg), num_classes=0)
    assert set(module.model.conditioners) == {"loudness"} and module.model.conditioners["loudness"].drop == 0.2
    trainer = pl.Trainer(max_steps=400, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, datamodule=ModalityDataModule(Waves(), batch_size=64, val_fraction=0.0))
    return module.eval().model


def _levels(model: DiffusionModel, loudness: float | None, scale: float, seed: int = 0) -> Tensor:
    conditions = None if loudness is None else {"loudness": torch.full((32,), loudness)}
    x = model.sample(32, conditions=conditions, guidance_scale=scale, steps=20,
                     generator=torch.Generator().manual_seed(seed))
    return rms(x)


def test_a_loudness_conditioner_from_a_test_file_steers_a_tiny_model(loud_model):
    quiet, middle, loud = (_levels(loud_model, level, 1.0) for level in (0.2, 0.5, 0.8))
    assert quiet.mean().item() == pytest.approx(0.2, abs=0.1)
    assert middle.mean().item() == pytest.approx(0.5, abs=0.1)
    assert loud.mean().item() == pytest.approx(0.8, abs=0.12)
    free = _levels(loud_model, None, 1.0)  # its learned null: the whole range of levels
    assert free.std().item() > 2 * middle.std().item()


def test_guiding_on_loudness_pushes_samples_further_towards_it(loud_model):
    plain, guided = _levels(loud_model, 0.8, 1.0), _levels(loud_model, 0.8, 3.0)
    assert abs(guided.mean().item() - 0.8) < abs(plain.mean().item() - 0.8)
    assert guided.std().item() < plain.std().item()


# --- a named condition on the command line ----------------------------------------------------
TINY = ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16", "net.attention_levels=[]",
        "modality.channels=1", "modality.spatial_size=[16,16]", "+conditioners@conditioners.level=scalar"]


@pytest.fixture(scope="module")
def level_bundle(tmp_path_factory):
    from tests.untrained_bundle import untrained_bundle

    return untrained_bundle(TINY, ["a", "b"], tmp_path_factory.mktemp("model"))


def test_a_bundle_with_a_scalar_condition_loads_and_generates_at_a_level(level_bundle, tmp_path):
    from diffusionkit.bundle import load_model
    from diffusionkit.cli import main

    model = load_model(level_bundle).module
    assert sorted(model.conditioners) == ["label", "level"]
    outputs = {}
    for level in ("0.1", "0.9"):
        assert main(["generate", f"ckpt={level_bundle}", "n=2", "steps=2", "seed=0", f"level={level}",
                     f"out={tmp_path / level}"]) == 0
        outputs[level] = sorted((tmp_path / level).rglob("*.pt")) or sorted((tmp_path / level).rglob("*.npy"))
    assert outputs["0.1"] and len(outputs["0.1"]) == len(outputs["0.9"])
    assert any((a.read_bytes() != b.read_bytes()) for a, b in zip(outputs["0.1"], outputs["0.9"]))


def test_a_condition_that_is_not_a_number_is_one_line(level_bundle, tmp_path, capsys):
    from diffusionkit.cli import main

    assert main(["generate", f"ckpt={level_bundle}", "n=1", "steps=2", "level=loud", f"out={tmp_path / 'x'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "level='loud' is not a number; pass level=NUMBER" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("guide, message", [
    ("[pitch]", "guide=['pitch']: cannot guide on 'pitch': this model's conditions are ['label', 'level']"),
    ("[level]", "guide=['level']: cannot guide on 'level': no level was given"),
    ("[two words]", "guide must be a list, each a name"),
])
def test_guide_names_the_conditions_guidance_acts_on(level_bundle, tmp_path, capsys, guide, message):
    from diffusionkit.cli import main

    assert main(["generate", f"ckpt={level_bundle}", "n=1", "steps=2", f"guide={guide}", f"out={tmp_path / 'x'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and message in err
    assert main(["generate", f"ckpt={level_bundle}", "n=1", "steps=2", "level=0.3", "guide=[level]", "label=a",
                 f"out={tmp_path / 'y'}"]) == 0
