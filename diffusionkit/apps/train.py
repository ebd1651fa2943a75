"""``diffusionkit train``: fit a diffusion model (or, with ``stage=autoencoder``, the first-stage
autoencoder of latent diffusion) on a modality's data and write a bundle."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from diffusionkit.apps.common import output_dir, require_values
from diffusionkit.bundle import diffusion_weights, file_sha256, read_run, run_metadata, save_bundle, subset
from diffusionkit.errors import UsageError
from diffusionkit.latent import estimate_scale_factor
from diffusionkit.modality import Modality
from diffusionkit.training.autoencoder_module import psnr
from diffusionkit.training.build import (build_autoencoder_module, build_diffusion_module, build_modality,
                                         num_classes_for)
from diffusionkit.training.callbacks import ReconstructionLogger, RunMetadata, SampleLogger
from diffusionkit.training.datamodule import ModalityDataModule
from diffusionkit.training.latent_cache import cached_latents

STAGES = ("diffusion", "autoencoder")


def run(cfg: DictConfig) -> Path:
    """Train; return the path of the written bundle (``<run>/model.safetensors`` for a diffusion
    model, ``<run>/autoencoder.safetensors`` for a first stage)."""
    require_values(cfg)
    if cfg.stage not in STAGES:
        raise UsageError(f"unknown stage '{cfg.stage}'; choose one of: {', '.join(STAGES)}")
    if cfg.resume and not Path(cfg.resume).expanduser().is_file():
        raise UsageError(f"resume checkpoint '{cfg.resume}' not found; pass resume=<run>/checkpoints/last.ckpt")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    modality = build_modality(cfg)
    dataset = instantiate(cfg.data.dataset)
    if cfg.stage == "autoencoder":
        return _train_autoencoder(cfg, modality, dataset)
    return _train_diffusion(cfg, modality, dataset)


def _run_dir(cfg: DictConfig) -> Path:
    """A new run folder; when resuming, ``out=`` if given, else the run the checkpoint belongs to
    (``<run>/checkpoints/x.ckpt``), else the checkpoint's own folder."""
    if not cfg.resume:
        return output_dir("train", cfg.out)
    if cfg.out:
        path = Path(cfg.out).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path
    checkpoint = Path(cfg.resume).expanduser().resolve()
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def _datamodule(cfg: DictConfig, dataset) -> ModalityDataModule:
    return ModalityDataModule(dataset, batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers,
                              val_fraction=cfg.data.val_fraction, seed=cfg.seed)


def _fit(cfg: DictConfig, module: pl.LightningModule, datamodule: ModalityDataModule, run_dir: Path,
         metadata: dict[str, str], media_logger: pl.Callback) -> pl.Trainer:
    """Lightning does the loop: checkpoints (with run metadata), loggers, media, resume."""
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    callbacks = [
        ModelCheckpoint(dirpath=run_dir / "checkpoints", every_n_train_steps=cfg.checkpoint.every_n_train_steps,
                        save_last=cfg.checkpoint.save_last, save_top_k=-1 if cfg.checkpoint.save_last else 1),
        RunMetadata(metadata),
        media_logger,
    ]
    logger = instantiate(cfg.logger, save_dir=str(run_dir)) if cfg.get("logger") else False
    trainer: pl.Trainer = instantiate(cfg.trainer, default_root_dir=str(run_dir), logger=logger,
                                      callbacks=callbacks)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.resume)
    # always resumable from the end (full state: optimizer, loops, callbacks)
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return trainer


def _train_diffusion(cfg: DictConfig, modality: Modality, dataset) -> Path:
    first_stage = _attach_first_stage(cfg, modality) if cfg.autoencoder.get("bundle") else None
    classes = list(getattr(dataset, "classes", []))
    num_classes = num_classes_for(classes)
    module = build_diffusion_module(cfg, modality, num_classes)
    run_dir = _run_dir(cfg)
    if module.latent is not None:
        if first_stage is None:
            raise UsageError("a latent model needs its first stage: autoencoder=pretrained autoencoder.bundle=PATH")
        module.latent.load_state_dict(first_stage)
        if cfg.autoencoder.cache_latents:
            key = hashlib.sha256((file_sha256(Path(cfg.autoencoder.bundle).expanduser())
                                  + OmegaConf.to_yaml(cfg.data.dataset, resolve=True)).encode()).hexdigest()
            cache = cfg.autoencoder.cache_path or run_dir / "latents.safetensors"
            dataset = cached_latents(dataset, module.latent, cache, key, batch_size=cfg.data.batch_size)
    samples = SampleLogger(modality, num_classes, run_dir / "samples", every_n_steps=cfg.samples.every_n_steps,
                           n=cfg.samples.n, steps=cfg.samples.steps, guidance=cfg.samples.guidance,
                           sampler=OmegaConf.to_container(cfg.sampler))
    _fit(cfg, module, _datamodule(cfg, dataset), run_dir, run_metadata(cfg, classes), samples)
    bundle = save_bundle(run_dir / "model.safetensors", diffusion_weights(module), run_metadata(cfg, classes))
    print(f"model bundle: {bundle}")
    return bundle


def _attach_first_stage(cfg: DictConfig, modality: Modality) -> dict[str, torch.Tensor]:
    """Read an autoencoder bundle; record its network and scale in ``cfg.autoencoder`` (so the
    diffusion bundle rebuilds it alone) and return its ``latent.*`` weights."""
    weights, metadata, ae_cfg = read_run(cfg.autoencoder.bundle, "autoencoder")
    ae_modality = build_modality(ae_cfg)
    if ae_modality.shape != modality.shape:
        raise UsageError(f"autoencoder '{cfg.autoencoder.bundle}' was trained on items of shape "
                         f"{list(ae_modality.shape)}, this data has {list(modality.shape)}")
    with open_dict(cfg):
        cfg.autoencoder.net = ae_cfg.first_stage.net
        cfg.autoencoder.scale_factor = float(metadata["scale_factor"])
    return {"scale_factor": torch.tensor(float(metadata["scale_factor"])), **
            {f"autoencoder.{k}": v for k, v in subset(weights, "autoencoder").items()}}


def _train_autoencoder(cfg: DictConfig, modality: Modality, dataset) -> Path:
    module = build_autoencoder_module(cfg, modality)
    datamodule = _datamodule(cfg, dataset)
    run_dir = _run_dir(cfg)
    classes = list(getattr(dataset, "classes", []))
    recon = ReconstructionLogger(modality, run_dir / "reconstructions", every_n_steps=cfg.samples.every_n_steps,
                                 n=cfg.samples.n)
    _fit(cfg, module, datamodule, run_dir, run_metadata(cfg, classes, kind="autoencoder"), recon)
    autoencoder = module.autoencoder.eval()
    scale = estimate_scale_factor(autoencoder, datamodule.train_dataloader(), cfg.first_stage.scale_batches)
    held_out = _held_out_psnr(module, datamodule)
    metadata = run_metadata(cfg, classes, kind="autoencoder", scale_factor=repr(scale),
                            held_out_psnr_db=repr(held_out))
    weights = {f"autoencoder.{k}": v for k, v in autoencoder.state_dict().items()}
    bundle = save_bundle(run_dir / "autoencoder.safetensors", weights, metadata)
    print(f"autoencoder bundle: {bundle}  (latent scale factor {scale:.4f}, held-out PSNR {held_out:.1f} dB)")
    return bundle


@torch.no_grad()
def _held_out_psnr(module, datamodule: ModalityDataModule) -> float:
    """Mean per-item PSNR (dB) of the reconstructions of the validation items (nan: none)."""
    loader = datamodule.val_dataloader()
    if not loader:
        return float("nan")
    values = [psnr(module.reconstruct(batch["x"].to(module.device)), batch["x"].to(module.device))
              for batch in loader]
    return float(torch.cat(values).mean())
