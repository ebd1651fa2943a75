"""The Lightning side of the first stage: training a KL autoencoder (Rombach et al. 2022).

The loss is a pixel-space reconstruction term (L1 or L2), ``kl_weight`` times the KL of the
posterior to N(0, I) (Kingma & Welling 2014), and an optional modality-specific term
(:meth:`diffusionkit.modality.Modality.reconstruction_loss`, passed in as ``extra_loss``).
With a discriminator, a hinge-loss PatchGAN term (Isola et al. 2017) is added after
``adversarial_start_step``, weighted adaptively as in VQGAN (Esser et al. 2021).
"""

from __future__ import annotations

from typing import Any, Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffusionkit.nets.autoencoder import AutoencoderKL

RECON_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"l1": F.l1_loss, "l2": F.mse_loss}


def psnr(x_hat: Tensor, x: Tensor, data_range: float = 2.0) -> Tensor:
    """Peak signal-to-noise ratio in dB per item, shape ``[B]``: ``10 log10(range^2 / MSE)``.

    ``data_range`` is the peak-to-peak range of the data: 2 for model space in [-1, 1].
    A perfect reconstruction gives ``inf``.
    """
    if x_hat.shape != x.shape:
        raise ValueError(f"psnr: shapes differ: {list(x_hat.shape)} vs {list(x.shape)}")
    mse = (x_hat.float() - x.float()).square().flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


def hinge_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """The discriminator's hinge loss (as used by VQGAN, Esser et al. 2021)."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


class AutoencoderModule(pl.LightningModule):
    """Trains an :class:`AutoencoderKL`, optionally against a discriminator.

    Args:
        autoencoder: the network to train.
        recon_loss: ``"l1"`` or ``"l2"``, averaged over all elements.
        kl_weight: weight of the per-item KL (summed over latent elements, averaged over the batch).
        extra_loss: ``f(reconstruction, target) -> scalar | None``, a modality-specific term
            (e.g. ``modality.reconstruction_loss``); None results add nothing.
        extra_loss_weight: its weight.
        discriminator: e.g. a :class:`~diffusionkit.nets.autoencoder.PatchDiscriminator`; with
            one, optimisation is manual with two optimizers (autoencoder, discriminator).
        adversarial_weight: scales the adaptive adversarial weight (Esser et al. 2021).
        adversarial_start_step: training batches before the discriminator is trained and used.
            (Lightning's ``trainer.global_step`` counts both optimizers' steps, so once the
            discriminator trains, ``trainer.max_steps`` is reached after half as many batches.)
        optimizer, lr_scheduler: factories (Hydra ``_partial_``) over parameters / optimizer;
            with a discriminator, both optimizers come from the same factory.
    """

    def __init__(
        self,
        autoencoder: AutoencoderKL,
        recon_loss: str = "l1",
        kl_weight: float = 1e-6,
        extra_loss: Callable[[Tensor, Tensor], Tensor | None] | None = None,
        extra_loss_weight: float = 1.0,
        discriminator: nn.Module | None = None,
        adversarial_weight: float = 0.5,
        adversarial_start_step: int = 0,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        lr_scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__()
        if recon_loss not in RECON_LOSSES:
            raise ValueError(f"unknown recon_loss '{recon_loss}'; choose one of: {', '.join(RECON_LOSSES)}")
        self.autoencoder = autoencoder
        self.recon_loss = recon_loss
        self.kl_weight = kl_weight
        self.extra_loss = extra_loss
        self.extra_loss_weight = extra_loss_weight
        self.discriminator = discriminator
        self.adversarial_weight = adversarial_weight
        self.adversarial_start_step = adversarial_start_step
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.automatic_optimization = discriminator is None
        #: each backward leaves some weights without gradients (the GAN stage trains two nets in
        #: turn); data-parallel training has to look for them (see trainer_options.build_trainer)
        self.has_unused_parameters = discriminator is not None
        # Training batches seen; unlike trainer.global_step it does not count the discriminator's steps.
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ losses
    def reconstruction_terms(self, x_hat: Tensor, x: Tensor) -> dict[str, Tensor]:
        """``recon`` and (when the hook gives one) ``extra``, both unweighted scalars."""
        terms = {"recon": RECON_LOSSES[self.recon_loss](x_hat, x)}
        if self.extra_loss is not None:
            extra = self.extra_loss(x_hat, x)
            if extra is not None:
                terms["extra"] = extra
        return terms

    def autoencoder_loss(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """One sampled forward pass: ``(x_hat, nll, logs)`` with ``nll`` = recon + weighted extra
        and ``logs`` holding ``recon``, ``kl``, ``extra`` and ``loss`` = nll + kl_weight * kl."""
        x_hat, posterior = self.autoencoder(x)
        logs = self.reconstruction_terms(x_hat, x)
        nll = logs["recon"] + self.extra_loss_weight * logs.get("extra", 0.0)
        logs["kl"] = posterior.kl().mean()
        logs["loss"] = nll + self.kl_weight * logs["kl"]
        return x_hat, nll, logs

    def adaptive_weight(self, nll: Tensor, g_loss: Tensor) -> Tensor:
        """``|grad nll| / |grad g_loss|`` at the decoder's last layer, times ``adversarial_weight``
        (Esser et al. 2021), so the adversarial term neither swamps nor vanishes beside the NLL."""
        last = self.autoencoder.last_layer
        nll_grad = torch.autograd.grad(nll, last, retain_graph=True)[0]
        g_grad = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
        weight = nll_grad.norm() / (g_grad.norm() + 1e-4)
        return weight.clamp(0.0, 1e4).detach() * self.adversarial_weight

    # ------------------------------------------------------------------ training
    def training_step(self, batch: Tensor | dict[str, Tensor], batch_idx: int) -> Tensor | None:
        x = _data(batch)
        if self.discriminator is None:
            _, _, logs = self.autoencoder_loss(x)
            self._log_train(logs, x.shape[0])
            self.batches_seen += 1
            return logs["loss"]
        self._adversarial_step(x)
        self.batches_seen += 1
        return None

    def _adversarial_step(self, x: Tensor) -> None:
        assert self.discriminator is not None
        opt_g, opt_d = self.optimizers()
        adversarial = int(self.batches_seen) >= self.adversarial_start_step

        self.toggle_optimizer(opt_g)
        x_hat, nll, logs = self.autoencoder_loss(x)
        loss = logs["loss"]
        if adversarial:
            logs["g_adv"] = -self.discriminator(x_hat).mean()
            logs["adv_weight"] = self.adaptive_weight(nll, logs["g_adv"])
            loss = loss + logs["adv_weight"] * logs["g_adv"]
            logs["loss"] = loss
        opt_g.zero_grad()
        self.manual_backward(loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        if adversarial:
            self.toggle_optimizer(opt_d)
            logits_real = self.discriminator(x.detach())
            logits_fake = self.discriminator(x_hat.detach())
            logs["d_loss"] = hinge_d_loss(logits_real, logits_fake)
            logs["logits_real"] = logits_real.detach().mean()
            logs["logits_fake"] = logits_fake.detach().mean()
            opt_d.zero_grad()
            self.manual_backward(logs["d_loss"])
            opt_d.step()
            self.untoggle_optimizer(opt_d)

        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler is not None:
                scheduler.step()
        self._log_train(logs, x.shape[0])

    def _log_train(self, logs: dict[str, Tensor], batch_size: int) -> None:
        for name, value in logs.items():
            self.log(f"train/{name}", value, prog_bar=name in ("loss", "recon"), batch_size=batch_size)

    def validation_step(self, batch: Tensor | dict[str, Tensor], batch_idx: int) -> None:
        x = _data(batch)
        x_hat = self.reconstruct(x)
        terms = self.reconstruction_terms(x_hat, x)
        size = x.shape[0]
        self.log("val/recon", terms["recon"], prog_bar=True, batch_size=size, sync_dist=True)
        if "extra" in terms:
            self.log("val/extra", terms["extra"], batch_size=size, sync_dist=True)
        self.log("val/psnr", psnr(x_hat, x).mean(), prog_bar=True, batch_size=size, sync_dist=True)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Decode the posterior mode of ``x``: the deterministic reconstruction."""
        return self.autoencoder.decode(self.autoencoder.encode(x).mode())

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError("no optimizer configured: set optim.optimizer in the config")
        modules = [self.autoencoder] if self.discriminator is None else [self.autoencoder, self.discriminator]
        optimizers = [self.optimizer_factory(m.parameters()) for m in modules]
        if self.lr_scheduler_factory is None:
            return optimizers[0] if len(optimizers) == 1 else optimizers
        configs = [
            {"optimizer": opt, "lr_scheduler": {"scheduler": self.lr_scheduler_factory(opt), "interval": "step"}}
            for opt in optimizers
        ]
        return configs[0] if len(configs) == 1 else configs


def _data(batch: Tensor | dict[str, Tensor]) -> Tensor:
    """The model-space tensor of a batch: the batch itself or its ``"x"`` entry."""
    return batch if isinstance(batch, Tensor) else batch["x"]

