"""Callbacks: sample media logged through the plugin, and run metadata in checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig

from diffusionkit.modality import Modality, Rendered


def log_rendered(logger: Any, tag: str, rendered: Rendered, step: int) -> None:
    """Send one rendered medium to a Lightning logger that can show it (TensorBoard and the like)."""
    writer = getattr(logger, "experiment", None)
    if rendered.kind == "image" and hasattr(writer, "add_image"):
        writer.add_image(tag, rendered.data, step, dataformats="HWC")
    elif rendered.kind == "audio" and hasattr(writer, "add_audio"):
        writer.add_audio(tag, torch.as_tensor(rendered.data)[None], step, sample_rate=rendered.rate)
    elif rendered.kind == "video" and hasattr(writer, "add_video"):
        writer.add_video(tag, torch.as_tensor(rendered.data), step, fps=rendered.rate)
    elif rendered.kind == "image" and hasattr(logger, "log_image"):
        logger.log_image(key=tag, images=[rendered.data], step=step)


class SampleLogger(pl.Callback):
    """Every ``every_n_steps`` (and at the end), sample a fixed-seed batch from the EMA weights,
    log it as media through the plugin and write the plugin's overview file under ``folder``."""

    def __init__(self, modality: Modality, num_classes: int, folder: str | Path, every_n_steps: int = 500,
                 n: int = 16, steps: int = 20, guidance: float = 2.0, sampler: DictConfig | None = None) -> None:
        self.modality = modality
        self.num_classes = num_classes
        self.folder = Path(folder)
        self.every_n_steps = every_n_steps
        self.n, self.steps, self.guidance = n, steps, guidance
        self.sampler = sampler or {"name": "dpmpp_2m", "spacing": "karras", "options": {}}
        self._last_logged = -1

    def _log(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        step = trainer.global_step
        if step == self._last_logged or not trainer.is_global_zero:
            return
        self._last_logged = step
        labels = None
        if self.num_classes:
            labels = torch.arange(self.n, device=module.device) % self.num_classes
        concat = None
        condition = getattr(module, "condition", None)
        if condition is not None:
            batch = next(iter(trainer.datamodule.val_dataloader() or trainer.datamodule.train_dataloader()))
            x = batch["x"][: self.n].to(module.device)
            concat = condition.from_data(x)
            labels = None if labels is None else labels[: x.shape[0]]
        generator = torch.Generator(device="cpu").manual_seed(0)
        was_training = module.training
        module.eval()
        samples = module.sample(
            self.n if concat is None else concat.shape[0], labels, sampler=self.sampler["name"], steps=self.steps,
            spacing=self.sampler["spacing"], guidance_scale=self.guidance,
            sampler_options=dict(self.sampler.get("options") or {}), concat=concat, generator=generator,
        ).float().cpu()
        module.train(was_training)
        rendered = self.modality.render(samples)
        for logger in trainer.loggers:
            log_rendered(logger, "samples", rendered, step)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.modality.save_grid(samples, self.folder / f"step_{step:06d}")

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any) -> None:
        if self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0:
            self._log(trainer, module)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._log(trainer, module)


class RunMetadata(pl.Callback):
    """Stores the resolved config and class names inside every Lightning checkpoint, as plain
    strings, so ``generate ckpt=run.ckpt`` can rebuild the model without pickled objects."""

    def __init__(self, metadata: dict[str, str]) -> None:
        self.metadata = dict(metadata)

    def on_save_checkpoint(self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict) -> None:
        from diffusionkit.bundle import CHECKPOINT_KEY

        checkpoint[CHECKPOINT_KEY] = dict(self.metadata)
