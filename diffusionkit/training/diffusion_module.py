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

from diffusionkit.diffusion.model import TRAINER_PREFIX, DiffusionModel, ema_with_warmup, trainer_state

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
        """Resume a checkpoint written before the model was split out (its weights get ``model.``)
        or before conditioners were parts of the net (renamed, and the optimiser's state, kept
        by parameter position, follows each parameter to its new position)."""
        if isinstance(checkpoint.get("state_dict"), dict):
            checkpoint["state_dict"] = trainer_state(checkpoint["state_dict"])
            stored = [k for k in checkpoint["state_dict"] if k.startswith(TRAINER_PREFIX + "net.")]
            reorder_optimizer_states(checkpoint, stored, [TRAINER_PREFIX + "net." + n for n, _ in
                                                          self.model.net.named_parameters()])


def reorder_optimizer_states(checkpoint: dict[str, Any], stored: list[str], parameters: list[str]) -> None:
    """Move an optimiser's per-parameter state (kept by position in ``net.parameters()``) from the
    positions the parameters had when the checkpoint was written (``stored``: its state names in
    order, buffers included) to today's (``parameters``); nothing happens where the two agree or
    the optimiser did not hold exactly the net's parameters."""
    old = [name for name in stored if name in set(parameters)]
    if old == parameters or sorted(old) != sorted(parameters):
        return
    position = {name: i for i, name in enumerate(parameters)}
    moved = {i: position[name] for i, name in enumerate(old)}
    for optimizer in checkpoint.get("optimizer_states") or []:
        state = optimizer.get("state") if isinstance(optimizer, dict) else None
        groups = optimizer.get("param_groups") if isinstance(optimizer, dict) else None
        if not isinstance(state, dict) or sum(len(g.get("params", [])) for g in groups or []) != len(parameters):
            continue
        optimizer["state"] = {moved.get(i, i): value for i, value in state.items()}
