"""Callbacks: sample media logged through the plugin, run metadata in checkpoints, and the
random streams of a run's processes."""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from diffusionkit.modality import Modality, Rendered
from diffusionkit.nets.conditioners import LABEL


#: the kinds of media without a writer that were already warned about (once per kind).
_UNWRITTEN: set[str] = set()


def log_rendered(logger: Any, tag: str, rendered: Rendered, step: int) -> None:
    """Send a rendered medium to a logger's experiment through the writer its plugin gave it;
    loggers that the writer does not accept (CSV) are skipped, and so is a medium without a
    writer (with one warning per kind)."""
    if rendered.writer is None:
        if rendered.kind not in _UNWRITTEN:
            _UNWRITTEN.add(rendered.kind)
            warnings.warn(f"rendered '{rendered.kind}' media have no writer, so no logger shows them; the plugin's "
                          f"render() should give Rendered(..., writer=...) (see diffusionkit.media)", stacklevel=2)
        return
    rendered.log(getattr(logger, "experiment", None), tag, step)


def publish(trainer: pl.Trainer, modality: Modality, batch: torch.Tensor, tag: str, folder: Path) -> None:
    """Log a data-space batch as media to every logger and write its overview file to ``folder``."""
    step = trainer.global_step
    rendered = modality.render(batch)
    media = [rendered] if isinstance(rendered, Rendered) else list(rendered)
    for logger in trainer.loggers:
        for medium in media:
            log_rendered(logger, tag if len(media) == 1 else f"{tag}/{medium.kind}", medium, step)
    folder.mkdir(parents=True, exist_ok=True)
    modality.save_grid(batch, folder / f"step_{step:06d}")


class PeriodicMedia(pl.Callback):
    """Every ``every_n_steps`` training steps and at the end (once per step), make a data-space
    batch with :meth:`make_batch` and :func:`publish` it under ``tag``."""

    tag = "media"

    def __init__(self, modality: Modality, folder: str | Path, every_n_steps: int = 500) -> None:
        self.modality, self.folder, self.every_n_steps = modality, Path(folder), every_n_steps
        self._last_step = -1

    def make_batch(self, trainer: pl.Trainer, module: pl.LightningModule) -> torch.Tensor:
        raise NotImplementedError

    def _publish(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        # Every process makes the batch (under a sharded strategy each holds a slice of the
        # weights, so all take part in running the net); the first one publishes it.
        if trainer.global_step == self._last_step:
            return
        self._last_step = trainer.global_step
        was_training = module.training
        module.eval()
        with torch.no_grad():
            batch = self.make_batch(trainer, module).float().cpu()
        module.train(was_training)
        if trainer.is_global_zero:
            publish(trainer, self.modality, batch, self.tag, self.folder)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any) -> None:
        if self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0:
            self._publish(trainer, module)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._publish(trainer, module)


def _first_items(trainer: pl.Trainer, n: int, device: torch.device) -> dict[str, torch.Tensor | list]:
    """The first ``n`` items of the validation set (or of the training set): each tensor of the
    batch, and each list (captions)."""
    loader = trainer.datamodule.val_dataloader() or trainer.datamodule.train_dataloader()
    batch = next(iter(loader)).items()
    return {k: v[:n].to(device) if isinstance(v, torch.Tensor) else list(v[:n]) for k, v in batch
            if isinstance(v, torch.Tensor | list)}


def _first_batch(trainer: pl.Trainer, n: int, device: torch.device) -> torch.Tensor:
    """The first ``n`` data items of the validation set (or of the training set)."""
    return _first_items(trainer, n, device)["x"]


class SampleLogger(PeriodicMedia):
    """Samples from the EMA weights with a fixed seed: every class in turn (and, for models with
    other conditions, those of the first validation items)."""

    tag = "samples"

    def __init__(self, modality: Modality, num_classes: int, folder: str | Path, every_n_steps: int = 500,
                 n: int = 16, steps: int = 20, guidance: float = 2.0, sampler: dict | None = None) -> None:
        super().__init__(modality, folder, every_n_steps)
        self.num_classes = num_classes
        self.n, self.steps, self.guidance = n, steps, guidance
        self.sampler = sampler or {"name": "dpmpp_2m", "spacing": "karras", "options": {}}

    def make_batch(self, trainer: pl.Trainer, module: pl.LightningModule) -> torch.Tensor:
        n, conditions, model = self.n, None, module.model
        named = [name for name in model.conditioners if name != LABEL]
        if named:  # the other conditions of the first validation items
            batch = _first_items(trainer, self.n, module.device)
            conditions = {name: model.conditioners[name].from_batch(batch) for name in named}
            n = len(batch["x"])
        labels = torch.arange(n, device=module.device) % self.num_classes if self.num_classes else None
        return model.sample(
            n, labels, sampler=self.sampler["name"], steps=self.steps, spacing=self.sampler["spacing"],
            guidance_scale=self.guidance, sampler_options=dict(self.sampler.get("options") or {}),
            conditions=conditions, generator=torch.Generator(device="cpu").manual_seed(0))


class ReconstructionLogger(PeriodicMedia):
    """The first validation items followed by their reconstructions (the autoencoder stage)."""

    tag = "reconstructions"

    def __init__(self, modality: Modality, folder: str | Path, every_n_steps: int = 500, n: int = 8) -> None:
        super().__init__(modality, folder, every_n_steps)
        self.n = n

    def make_batch(self, trainer: pl.Trainer, module: pl.LightningModule) -> torch.Tensor:
        x = _first_batch(trainer, self.n, module.device)
        return torch.cat([x, module.reconstruct(x)])


class RunMetadata(pl.Callback):
    """Stores the resolved config and class names inside every Lightning checkpoint, as plain
    strings, so ``generate ckpt=run.ckpt`` can rebuild the model without pickled objects."""

    def __init__(self, metadata: dict[str, str]) -> None:
        self.metadata = dict(metadata)

    def on_save_checkpoint(self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict) -> None:
        from diffusionkit.bundle import CHECKPOINT_KEY

        checkpoint[CHECKPOINT_KEY] = dict(self.metadata)


def derived_seed(seed: int, rank: int, step: int) -> int:
    """A seed for one process at one step: distinct per rank and per resume point."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


class ProcessSeeds(pl.Callback):
    """Reseeds each process when training starts, so the processes of a multi-process run draw
    different noise levels and noise for their shards (with one seed they would repeat each
    other's draws), and a resumed run draws fresh noise instead of replaying the first steps.
    A fresh single-process run keeps ``seed=``'s stream unchanged."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.world_size == 1 and trainer.global_step == 0:
            return
        seed = derived_seed(self.seed, trainer.global_rank, trainer.global_step)
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
