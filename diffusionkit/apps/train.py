"""``diffusionkit train``: fit a diffusion model on a modality's data and write a bundle."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from diffusionkit.apps.common import output_dir, require_values
from diffusionkit.bundle import run_metadata, save_bundle
from diffusionkit.errors import UsageError
from diffusionkit.training.build import build_diffusion_module, build_modality, num_classes_for
from diffusionkit.training.callbacks import RunMetadata, SampleLogger
from diffusionkit.training.datamodule import ModalityDataModule


def run(cfg: DictConfig) -> Path:
    """Train; return the path of the written model bundle (``<run>/model.safetensors``)."""
    require_values(cfg)
    if cfg.resume and not Path(cfg.resume).expanduser().is_file():
        raise UsageError(f"resume checkpoint '{cfg.resume}' not found; pass resume=<run>/checkpoints/last.ckpt")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    modality = build_modality(cfg)
    datamodule = ModalityDataModule(instantiate(cfg.data.dataset), batch_size=cfg.data.batch_size,
                                    num_workers=cfg.data.num_workers, val_fraction=cfg.data.val_fraction,
                                    seed=cfg.seed)
    classes = datamodule.classes
    num_classes = num_classes_for(classes)
    module = build_diffusion_module(cfg, modality, num_classes)

    run_dir = output_dir("train", cfg.out) if not cfg.resume else Path(cfg.resume).expanduser().parent.parent
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    metadata = run_metadata(cfg, classes)
    callbacks = [
        ModelCheckpoint(dirpath=run_dir / "checkpoints", every_n_train_steps=cfg.checkpoint.every_n_train_steps,
                        save_last=cfg.checkpoint.save_last, save_top_k=-1 if cfg.checkpoint.save_last else 1),
        RunMetadata(metadata),
        SampleLogger(modality, num_classes, run_dir / "samples", every_n_steps=cfg.samples.every_n_steps,
                     n=cfg.samples.n, steps=cfg.samples.steps, guidance=cfg.samples.guidance,
                     sampler=OmegaConf.to_container(cfg.sampler)),
    ]
    logger = instantiate(cfg.logger, save_dir=str(run_dir)) if cfg.get("logger") else False
    trainer: pl.Trainer = instantiate(cfg.trainer, default_root_dir=str(run_dir), logger=logger,
                                      callbacks=callbacks)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.resume)
    # always resumable from the end (full state: optimizer, loops, callbacks)
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    bundle = save_bundle(run_dir / "model.safetensors", module, cfg, classes)
    print(f"model bundle: {bundle}")
    return bundle
