"""The latent autoencoder stage: shapes for every rank and factor, the KL posterior, the frozen
scaled latent space, the training module (extra loss hook, adversarial path) and a real run."""

from __future__ import annotations

import copy
import math
import time
from functools import partial

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diffusionkit.latent import LatentSpace, estimate_scale_factor
from diffusionkit.nets.autoencoder import AutoencoderKL, DiagonalGaussian, PatchDiscriminator
from diffusionkit.nets.layers import ResBlock
from diffusionkit.training.autoencoder_module import AutoencoderModule, hinge_d_loss, psnr
from tests.toy_modality import ToyModality

MULTS = {2: (1, 2), 4: (1, 2, 2), 8: (1, 2, 2, 2)}


def tiny_ae(rank: int = 2, f: int = 2, in_channels: int = 1, **kw) -> AutoencoderKL:
    torch.manual_seed(0)
    cfg = dict(latent_channels=4, base_channels=8, channel_mult=MULTS[f])
    cfg.update(kw)
    return AutoencoderKL(rank, in_channels, **cfg)


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def fit(module: pl.LightningModule, x: torch.Tensor, max_steps: int, validate: bool = False) -> pl.Trainer:
    """Fit on dict batches ``{"x": ...}`` of 8 (the datasets' convention), validating on one
    batch at each epoch's end when asked; return the trainer."""
    items = [{"x": item} for item in x]
    loader = torch.utils.data.DataLoader(items, batch_size=8, shuffle=True)
    val = torch.utils.data.DataLoader(items, batch_size=8)
    trainer = pl.Trainer(max_steps=max_steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", limit_val_batches=int(validate),
                         num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=val)
    return trainer


# ---------------------------------------------------------------------- AutoencoderKL
@pytest.mark.parametrize("f", [2, 4, 8])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_latent_shapes_every_rank_and_factor(rank, f):
    spatial = {1: (48,), 2: (16, 24), 3: (8, 16, 8)}[rank]
    ae = tiny_ae(rank, f, in_channels=3, latent_channels=5)
    expected = (5, *(s // f for s in spatial))
    assert ae.downsampling_factor == f
    assert ae.latent_shape((3, *spatial)) == expected
    x = rand(2, 3, *spatial)
    posterior = ae.encode(x)
    assert posterior.mean.shape == posterior.logvar.shape == (2, *expected)
    x_hat, _ = ae(x)
    assert x_hat.shape == x.shape
    assert ae.decode(rand(2, *expected)).shape == x.shape


def test_config_records_the_constructor_arguments():
    ae = AutoencoderKL(1, 2, latent_channels=3, base_channels=8, channel_mult=(1, 2, 2, 2), num_res_blocks=2)
    assert ae.config == dict(spatial_rank=1, in_channels=2, latent_channels=3, base_channels=8,
                             channel_mult=[1, 2, 2, 2], num_res_blocks=2)
    assert AutoencoderKL(**ae.config).latent_shape((2, 64)) == (3, 8)


def test_size_not_divisible_by_the_factor_is_a_clear_error():
    ae = tiny_ae(2, f=4)
    with pytest.raises(ValueError, match=r"spatial size 30 of data shape \[1, 30, 32\] is not divisible .* factor 4"):
        ae.latent_shape((1, 30, 32))
    with pytest.raises(ValueError, match="not divisible"):
        ae.encode(rand(1, 1, 32, 30))


def test_wrong_rank_or_channels_is_a_clear_error():
    ae = tiny_ae(2)
    with pytest.raises(ValueError, match=r"not \(channels, 2 spatial sizes\)"):
        ae.latent_shape((1, 32))
    with pytest.raises(ValueError, match="has 3 channels, expected 1"):
        ae.latent_shape((3, 8, 8))
    with pytest.raises(ValueError, match=r"expected latents of shape \[B, 4"):
        ae.decode(rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="spatial_rank must be 1, 2 or 3"):
        AutoencoderKL(4, 1)


def test_posterior_sample_differs_from_mode_and_forward_can_use_the_mode():
    ae = tiny_ae(1)
    x = rand(2, 1, 16)
    posterior = ae.encode(x)
    torch.testing.assert_close(ae(x, sample_posterior=False)[0], ae.decode(posterior.mode()))
    assert not torch.allclose(ae(x)[0], ae.decode(posterior.mode()))


def test_emb_free_resblock_rejects_an_embedding():
    block = ResBlock(1, 4, 6, emb_dim=0)
    assert block(rand(2, 4, 8)).shape == (2, 6, 8)
    with pytest.raises(ValueError, match="emb_dim=0"):
        block(rand(2, 4, 8), rand(2, 3))


# ---------------------------------------------------------------------- DiagonalGaussian
def test_kl_of_standard_normal_is_zero_and_grows_with_the_mean():
    zeros = torch.zeros(3, 4, 5, 5)
    torch.testing.assert_close(DiagonalGaussian(zeros, zeros).kl(), torch.zeros(3))
    kls = [DiagonalGaussian(torch.full((2, 4, 5, 5), a), zeros[:2]).kl() for a in (0.5, -1.0, 2.0)]
    for a, kl in zip((0.5, -1.0, 2.0), kls):
        torch.testing.assert_close(kl, torch.full((2,), 0.5 * a * a * 100))  # 0.5 * mean^2 per element
    assert kls[0][0] < kls[1][0] < kls[2][0]


def test_kl_of_a_wider_gaussian_matches_the_closed_form():
    logvar = torch.full((1, 10), math.log(4.0))
    kl = DiagonalGaussian(torch.zeros(1, 10), logvar).kl()
    torch.testing.assert_close(kl, torch.tensor([10 * 0.5 * (4.0 - 1.0 - math.log(4.0))]))


def test_logvar_is_clamped():
    g = DiagonalGaussian(torch.zeros(2, 3), torch.tensor([[-100.0, 0.0, 100.0]] * 2))
    assert g.logvar.tolist()[0] == [-30.0, 0.0, 20.0]


def test_sample_with_a_seeded_generator_is_reproducible():
    g = DiagonalGaussian(rand(2, 4, 8, 8), rand(2, 4, 8, 8, seed=1))
    a = g.sample(torch.Generator().manual_seed(7))
    b = g.sample(torch.Generator().manual_seed(7))
    c = g.sample(torch.Generator().manual_seed(8))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_sample_has_the_posterior_mean_and_std():
    g = DiagonalGaussian(torch.full((1, 20000), 3.0), torch.full((1, 20000), math.log(0.25)))
    s = g.sample(torch.Generator().manual_seed(0))
    assert s.mean().item() == pytest.approx(3.0, abs=0.02)
    assert s.std().item() == pytest.approx(0.5, abs=0.02)


# ---------------------------------------------------------------------- LatentSpace
def test_scale_factor_brings_latent_std_to_one():
    ae = tiny_ae(2, f=4)
    raw_std = ae.encode(rand(16, 1, 16, 16, seed=99)).mode().std().item()
    batches = [rand(16, 1, 16, 16, seed=s) for s in range(4)]
    scale = estimate_scale_factor(ae, batches)
    assert abs(raw_std - 1.0) > 0.2, "the test needs latents whose raw std is not already ~1"
    z = LatentSpace(ae, scale).encode(rand(64, 1, 16, 16, seed=123))
    assert z.std().item() == pytest.approx(1.0, abs=0.05)


def test_estimate_scale_factor_reads_dict_batches_and_only_the_first_ones():
    ae = tiny_ae(1)
    batches = [{"x": rand(8, 1, 16, seed=s)} for s in range(3)] + [{"x": 100 * rand(8, 1, 16)}]
    from_two = estimate_scale_factor(ae, batches, max_batches=2)
    z = torch.cat([ae.encode(b["x"]).mode() for b in batches[:2]])
    assert from_two == pytest.approx(1.0 / z.std().item(), rel=1e-4)
    assert estimate_scale_factor(ae, batches, max_batches=3) == pytest.approx(from_two, rel=0.2)


def test_latent_space_round_trip_matches_the_autoencoder():
    ae = tiny_ae(2, f=2)
    latent = LatentSpace(ae, scale_factor=0.37)
    x = rand(2, 1, 8, 8)
    z = latent.encode(x)
    mode = ae.encode(x).mode()
    torch.testing.assert_close(z, 0.37 * mode)
    torch.testing.assert_close(latent.decode(z), ae.decode(mode), atol=1e-5, rtol=1e-5)
    assert latent.latent_shape((1, 8, 8)) == (4, 4, 4) == tuple(z.shape[1:])
    sampled = latent.encode(x, generator=torch.Generator().manual_seed(0), sample=True)
    assert not torch.allclose(sampled, z)
    assert float(latent.state_dict()["scale_factor"]) == pytest.approx(0.37)


def test_latent_space_stays_frozen_and_in_eval_mode():
    latent = LatentSpace(tiny_ae(1), 2.0)
    parent = nn.ModuleDict({"latent": latent, "head": nn.Linear(2, 2)})
    parent.train()
    assert parent["head"].training
    assert not latent.training and not any(m.training for m in latent.modules())
    assert not any(p.requires_grad for p in latent.parameters())
    x = rand(2, 1, 16).requires_grad_()
    latent.decode(latent.encode(x)).square().sum().backward()
    assert all(p.grad is None for p in latent.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients still reach the input


def test_latent_space_rejects_a_non_positive_scale():
    with pytest.raises(ValueError, match="scale_factor must be > 0"):
        LatentSpace(tiny_ae(1), 0.0)


# ---------------------------------------------------------------------- PatchDiscriminator
@pytest.mark.parametrize(
    "rank,size,num_layers", [(1, 64, 3), (1, 24, 3), (2, 32, 3), (2, 40, 2), (3, 16, 2)], ids=str
)
def test_patch_discriminator_output_shapes(rank, size, num_layers):
    d = PatchDiscriminator(rank, 3, width=8, num_layers=num_layers)
    out = d(rand(2, 3, *[size] * rank))
    assert out.shape == (2, 1, *[size // 2**num_layers - 2] * rank)


def test_patch_discriminator_too_small_input_is_a_clear_error():
    with pytest.raises(ValueError, match="every spatial size must be >= 24"):
        PatchDiscriminator(2, 1, width=8)(rand(1, 1, 16, 32))


def test_hinge_loss_and_psnr_values():
    assert hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0)).item() == 0.0
    assert hinge_d_loss(torch.zeros(4), torch.zeros(4)).item() == 1.0
    x = rand(3, 1, 8, 8)
    torch.testing.assert_close(psnr(x + 0.1, x), torch.full((3,), 10 * math.log10(4 / 0.01)))
    assert psnr(x + 0.1, x, data_range=1.0)[0].item() == pytest.approx(20.0, abs=1e-3)


# ---------------------------------------------------------------------- AutoencoderModule
def adam(lr: float = 1e-3):
    return partial(torch.optim.Adam, lr=lr)


def test_loss_is_recon_plus_weighted_kl_plus_weighted_extra():
    calls = []

    def extra(x_hat, x):
        calls.append(x_hat.shape)
        return torch.tensor(0.25)

    module = AutoencoderModule(tiny_ae(1), recon_loss="l2", kl_weight=1e-3, extra_loss=extra, extra_loss_weight=2.0)
    torch.manual_seed(0)
    _, nll, logs = module.autoencoder_loss(rand(4, 1, 16))
    assert calls == [torch.Size([4, 1, 16])]
    assert logs["extra"].item() == 0.25
    assert nll.item() == pytest.approx(logs["recon"].item() + 0.5, rel=1e-6)
    assert logs["loss"].item() == pytest.approx(logs["recon"].item() + 1e-3 * logs["kl"].item() + 0.5, rel=1e-6)


def test_extra_loss_hook_runs_in_training_and_validation():
    calls = {"n": 0}

    def extra(x_hat, x):
        calls["n"] += 1
        return (x_hat - x).abs().mean()

    module = AutoencoderModule(tiny_ae(1), extra_loss=extra, optimizer=adam())
    trainer = fit(module, rand(24, 1, 16), max_steps=3, validate=True)  # one epoch of three batches
    assert calls["n"] == 3 + 1  # three training steps, one validation batch
    metrics = trainer.callback_metrics
    assert {"train/recon", "train/kl", "train/loss", "train/extra", "val/recon", "val/psnr"} <= set(metrics)


def test_modality_default_hook_adds_no_term():
    modality = ToyModality(1, (16,))
    assert modality.reconstruction_loss(rand(2, 1, 16), rand(2, 1, 16)) is None
    module = AutoencoderModule(tiny_ae(1), extra_loss=modality.reconstruction_loss)
    _, nll, logs = module.autoencoder_loss(rand(2, 1, 16))
    assert "extra" not in logs and torch.equal(nll, logs["recon"])


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown recon_loss 'l3'"):
        AutoencoderModule(tiny_ae(1), recon_loss="l3")
    with pytest.raises(ValueError, match="no optimizer configured"):
        AutoencoderModule(tiny_ae(1)).configure_optimizers()


def test_reconstruct_is_the_decoded_posterior_mode_without_grad():
    module = AutoencoderModule(tiny_ae(2))
    x = rand(2, 1, 8, 8)
    out = module.reconstruct(x)
    assert not out.requires_grad
    torch.testing.assert_close(out, module.autoencoder.decode(module.autoencoder.encode(x).mode()))


def adversarial_module(**kw) -> AutoencoderModule:
    torch.manual_seed(0)
    disc = PatchDiscriminator(2, 1, width=8, num_layers=2)
    return AutoencoderModule(tiny_ae(2), discriminator=disc, optimizer=adam(), **kw)


def test_discriminator_path_trains_both_networks_with_two_optimizers():
    module = adversarial_module(lr_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5))
    disc_before = copy.deepcopy(module.discriminator.state_dict())
    ae_before = copy.deepcopy(module.autoencoder.state_dict())
    trainer = fit(module, rand(24, 1, 16, 16), max_steps=6)  # manual global_step counts both optimizers
    assert not module.automatic_optimization
    assert len(trainer.optimizers) == 2
    assert int(module.batches_seen) == 3
    assert any(not torch.equal(v, module.discriminator.state_dict()[k]) for k, v in disc_before.items())
    assert any(not torch.equal(v, module.autoencoder.state_dict()[k]) for k, v in ae_before.items())
    assert {"train/d_loss", "train/g_adv", "train/adv_weight", "train/recon"} <= set(trainer.callback_metrics)
    assert float(trainer.callback_metrics["train/adv_weight"]) > 0
    assert [opt.param_groups[0]["lr"] for opt in trainer.optimizers] == [pytest.approx(1e-3 / 8)] * 2


def test_adversarial_term_waits_for_its_start_step():
    module = adversarial_module(adversarial_start_step=100)
    disc_before = copy.deepcopy(module.discriminator.state_dict())
    trainer = fit(module, rand(24, 1, 16, 16), max_steps=3)
    assert int(module.batches_seen) == 3
    assert all(torch.equal(v, module.discriminator.state_dict()[k]) for k, v in disc_before.items())
    assert "train/d_loss" not in trainer.callback_metrics
    assert "train/recon" in trainer.callback_metrics


# ---------------------------------------------------------------------- a real run
def digits_32(split: str) -> torch.Tensor:
    """scikit-learn's 8x8 digits, bilinearly upscaled to 32x32, in [-1, 1]; 297 held out."""
    from sklearn.datasets import load_digits

    images = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16 * 2 - 1
    x = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False).clamp(-1, 1)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[perm[:1500]] if split == "train" else x[perm[1500:]]


@pytest.mark.slow
def test_autoencoder_learns_digits_at_f4(record_property):
    pytest.importorskip("sklearn")
    train, held_out = digits_32("train"), digits_32("held_out")
    ae = tiny_ae(2, f=4, base_channels=16)
    steps = 150
    module = AutoencoderModule(
        ae, optimizer=adam(2e-3),
        lr_scheduler=partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=2e-3, total_steps=steps, pct_start=0.05),
    )
    val = torch.utils.data.DataLoader([{"x": item} for item in held_out], batch_size=100)
    loader = torch.utils.data.DataLoader([{"x": item} for item in train], batch_size=32, shuffle=True)
    trainer = pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0)
    before = trainer.validate(module, val, verbose=False)[0]
    start = time.perf_counter()
    trainer.fit(module, loader, val)
    seconds = time.perf_counter() - start
    after = trainer.validate(module, val, verbose=False)[0]
    record_property("held_out_psnr_db", after["val/psnr"])
    print(f"\nheld-out digits, f=4: L1 {before['val/recon']:.3f} -> {after['val/recon']:.3f}, "
          f"PSNR {before['val/psnr']:.1f} -> {after['val/psnr']:.1f} dB in {seconds:.0f} s ({steps} steps)")
    assert after["val/recon"] < 0.5 * before["val/recon"]
    assert after["val/psnr"] > 25.0  # the project's bar at f=4
