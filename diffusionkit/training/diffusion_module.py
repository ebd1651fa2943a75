"""The Lightning side of a diffusion model: a thin trainer around a :class:`DiffusionModel`.

The model (loss, EMA, sampling) is :mod:`diffusionkit.diffusion.model`; this module adds what
training needs: the optimiser and its schedule, logging, and the EMA update after each
optimiser step. Checkpoints hold the model's weights under ``model.``; one written before the
model was split out (names without the prefix) resumes too.
"""

from __future__ import annotations

from typing import Any, Callable

import lightning.pytorch as pl
import torch
from torch import Tensor

from diffusionkit.diffusion.model import DiffusionModel, ema_with_warmup, trainer_state

__all__ = ["DiffusionModule", "ema_with_warmup"]


class DiffusionModule(pl.LightningModule):
    """Trains ``model`` (a :class:`DiffusionModel`) with the optimiser and learning-rate schedule
    that ``optimizer`` and ``lr_scheduler`` make (Hydra ``_partial_`` factories over the net's
    parameters / the optimiser)."""

    def __init__(
        self,
        model: DiffusionModel,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        lr_scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.model.loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["label"]), sync_dist=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # A fixed generator per batch makes validation losses comparable across the run.
        generator = torch.Generator(device=self.device).manual_seed(batch_idx)
        loss = self.model.loss(batch, generator=generator)
        self.log("val/loss", loss, prog_bar=True, batch_size=len(batch["label"]), sync_dist=True)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        # Updating the EMA right after the weights (not in on_train_batch_end) means a checkpoint
        # written by a callback at the end of this batch already holds this step's average.
        super().optimizer_step(*args, **kwargs)
        self.model.update_ema()

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError("no optimizer configured: set optim.optimizer in the config")
        optimizer = self.optimizer_factory(self.model.net.parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resume a checkpoint written before the model was split out: its weights get ``model.``."""
        if isinstance(checkpoint.get("state_dict"), dict):
            checkpoint["state_dict"] = trainer_state(checkpoint["state_dict"])
