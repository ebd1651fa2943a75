"""Stopping a diverged run before a NaN or infinite loss reaches the weights."""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor


class NonFiniteLossGuard(pl.Callback):
    """Stops training at the first optimizer step whose loss is NaN or infinite, before that step
    changes any weight.

    Every process takes part in the decision (one any-reduction per optimizer step), so all stop
    at the same step. The step's gradients are dropped, so the weights in memory, the EMA and
    every checkpoint written stay those of the last good step (a mixed-precision grad scaler
    skips such a step by itself). After ``fit`` returns, :attr:`diverged_at` holds the step (counted from 1) and
    :attr:`bad_loss` the value; nothing downstream (final checkpoint, bundle) should be written.
    """

    def __init__(self) -> None:
        self.diverged_at: int | None = None
        self.bad_loss: float | None = None
        self._pending: float | None = None

    def on_before_backward(self, trainer: pl.Trainer, module: pl.LightningModule, loss: Tensor) -> None:
        if self._pending is None and not bool(torch.isfinite(loss.detach()).all()):
            self._pending = float(loss.detach().float().flatten()[0])

    def on_before_optimizer_step(self, trainer: pl.Trainer, module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        bad = trainer.strategy.reduce_boolean_decision(self._pending is not None, all=False)
        if not bad:
            return
        if getattr(trainer.precision_plugin, "scaler", None) is None:
            for group in optimizer.param_groups:
                for param in group["params"]:
                    param.grad = None  # the optimizer then leaves every weight as it is
        if self.diverged_at is None:
            self.diverged_at = trainer.global_step + 1  # counting steps from 1, as checkpoint names do
            self.bad_loss = self._pending if self._pending is not None else math.nan
        trainer.should_stop = True


def divergence_message(step: int, loss: float | None, checkpoint: str | None, lr: Any) -> str:
    """The one line a diverged run ends with."""
    value = "nan" if loss is None or math.isnan(loss) else ("inf" if loss > 0 else "-inf")
    kept = f"the last good checkpoint is '{checkpoint}'" if checkpoint else "no checkpoint had been written yet"
    rate = f" (now {lr})" if lr is not None else ""
    return (f"training diverged: the loss was {value} in step {step}, so training stopped before that step "
            f"changed the weights and wrote no bundle; {kept}. Lower optim.optimizer.lr{rate} or "
            f"trainer.gradient_clip_val and train again (or resume from that checkpoint if one bad batch was to blame)")
