"""DiffusionModel, trained by its DiffusionModule: it learns class-conditional toy data, keeps EMA
weights, samples every way."""

from functools import partial

import lightning.pytorch as pl
import pytest
import torch

from diffusionkit.diffusion.model import DiffusionModel
from diffusionkit.diffusion.schedules import NoiseSchedule
from diffusionkit.nets.conditioners import ClassLabel
from diffusionkit.nets.unet import UNet
from diffusionkit.training.datamodule import ModalityDataModule
from diffusionkit.training.diffusion_module import DiffusionModule
from tests.toy_modality import GaussianClasses


def tiny_model(rank: int = 1, size: int = 8, num_classes: int = 2, **kw) -> DiffusionModel:
    torch.manual_seed(0)
    net = UNet(rank, 1, model_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,))
    conditioners = {"label": ClassLabel(num_classes, drop=kw.pop("label_dropout", 0.1))} if num_classes else {}
    return DiffusionModel(net, NoiseSchedule("linear"), (1, *[size] * rank), conditioners=conditioners,
                          ema_decay=0.9, **kw)


def tiny_module(rank: int = 1, size: int = 8, num_classes: int = 2, **kw) -> DiffusionModule:
    return DiffusionModule(tiny_model(rank, size, num_classes, **kw), optimizer=partial(torch.optim.AdamW, lr=3e-3))


@pytest.fixture(scope="module")
def trained() -> DiffusionModel:
    module = tiny_module(prediction="v", loss_weighting="min_snr")
    data = ModalityDataModule(GaussianClasses((1, 8), n=256), batch_size=64, val_fraction=0.0)
    trainer = pl.Trainer(max_steps=300, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, datamodule=data)
    return module.eval().model


def test_class_conditional_samples_sit_at_their_class_level(trained):
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0] * 32 + [1] * 32)
    x = trained.sample(64, labels, sampler="dpmpp_2m", steps=20, guidance_scale=2.0, generator=gen)
    assert x.shape == (64, 1, 8)
    assert x[:32].mean().item() == pytest.approx(-1.0, abs=0.25)
    assert x[32:].mean().item() == pytest.approx(1.0, abs=0.25)


def test_ema_weights_differ_from_raw_weights_after_training(trained):
    raw = dict(trained.net.named_parameters())
    ema = dict(trained.ema.module.named_parameters())
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)
    assert int(trained.ema.n_averaged) == 300


def test_sdedit_strength_zero_returns_input_and_inversion_round_trips(trained):
    x0 = GaussianClasses((1, 8), n=4).x
    labels = torch.tensor([0, 1, 0, 1])
    same = trained.sample(4, labels, init=x0, strength=0.0, steps=10)
    torch.testing.assert_close(same, x0)
    noise = trained.invert(x0, labels, steps=50)
    back = trained.sample(4, labels, sampler="ddim", steps=50, spacing="trailing", noise=noise)
    assert (back - x0).abs().max().item() < 0.15


def test_inpainting_keeps_the_known_region(trained):
    known = torch.full((2, 1, 8), 0.5)
    mask = torch.zeros(1, 1, 8)
    mask[..., :4] = 1
    x = trained.sample(2, torch.tensor([1, 1]), known=known, mask=mask, steps=10,
                       generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(x[..., :4], known[..., :4])


@pytest.mark.parametrize("rank,size", [(1, 8), (2, 8), (3, 4)])
def test_loss_and_sample_shapes_for_every_rank(rank, size):
    model = tiny_model(rank, size)
    batch = {"x": torch.randn(3, 1, *[size] * rank), "label": torch.tensor([0, 1, 0])}
    loss = model.loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert model.sample(2, steps=2).shape == (2, 1, *[size] * rank)


def test_unknown_prediction_is_refused():
    with pytest.raises(ValueError, match="unknown prediction 'noise'; choose one of: eps, x0, v"):
        tiny_model(prediction="noise")


def test_ema_warm_up_follows_the_weights_early_and_settles_at_the_decay():
    from diffusionkit.training.diffusion_module import ema_with_warmup

    update = ema_with_warmup(0.999)
    averaged, current = [torch.zeros(3)], [torch.ones(3)]
    for n in range(1, 21):
        update(averaged, current, n)
    # decays 2/11, 3/12, ... 21/30: after 20 updates the average has nearly reached the weights
    assert averaged[0][0].item() == pytest.approx(1.0, abs=0.01)
    late = [torch.zeros(1)]
    update(late, [torch.ones(1)], 10**6)
    assert late[0].item() == pytest.approx(0.001, rel=1e-6)
