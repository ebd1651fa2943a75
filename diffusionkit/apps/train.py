"""``diffusionkit train``: fit a diffusion model (or, with ``stage=autoencoder``, the first-stage
autoencoder of latent diffusion) on a modality's data and write a bundle."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from diffusionkit.apps.common import require_values
from diffusionkit.apps.run_folder import check_weights_fit, open_run_folder, resume_checkpoint
from diffusionkit.apps.warm_start import warm_start
from diffusionkit.atomic import atomic_path
from diffusionkit.bundle import bundle_weights, file_sha256, read_run, run_metadata, save_bundle, subset
from diffusionkit.errors import UsageError
from diffusionkit.latent import estimate_scale_factor
from diffusionkit.modality import Modality
from diffusionkit.names import dataset_classes
from diffusionkit.options import STAGES
from diffusionkit.training.augment import Augmenter, build_augmenter
from diffusionkit.training.autoencoder_module import psnr
from diffusionkit.training.build import (build_autoencoder_module, build_diffusion_module, build_modality,
                                         num_classes_for)
from diffusionkit.training.callbacks import ProcessSeeds, ReconstructionLogger, RunMetadata, SampleLogger
from diffusionkit.training.data_report import write_data_report
from diffusionkit.training.datamodule import ModalityDataModule
from diffusionkit.training.faults import NonFiniteLossGuard, divergence_message
from diffusionkit.training.item_checks import check_items
from diffusionkit.training.latent_cache import cached_latents
from diffusionkit.training.processes import (first_on_node, leave_process_group, node_config_path, owns_run_folder,
                                            shared_run_dir, spawned_run_dir)
from diffusionkit.training.trainer_options import apply_module_options, build_trainer



def run(cfg: DictConfig) -> Path | None:
    """Train; return the path of the written bundle (``<run>/model.safetensors`` for a diffusion
    model, ``<run>/autoencoder.safetensors`` for a first stage). In a multi-process run only the
    first process writes it; the others return None."""
    require_values(cfg)
    if cfg.stage not in STAGES:
        raise UsageError(f"unknown stage '{cfg.stage}'; choose one of: {', '.join(STAGES)}")
    if cfg.stage == "upsampler":
        _check_upsampler(cfg)
    checkpoint = resume_checkpoint(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    modality = build_modality(cfg)
    dataset = instantiate(cfg.data.dataset)
    check_items(dataset, modality)
    augmenter = build_augmenter(cfg.get("augment"), modality)
    try:
        if cfg.stage == "autoencoder":
            return _train_autoencoder(cfg, modality, dataset, checkpoint, augmenter)
        return _train_diffusion(cfg, modality, dataset, checkpoint, augmenter)
    finally:
        leave_process_group()


def _check_upsampler(cfg: DictConfig) -> None:
    """A super-resolution stage (stage=upsampler) needs its low-resolution condition."""
    targets = [str(spec.get("_target_")) for spec in (cfg.get("conditioners") or {}).values()]
    if "diffusionkit.nets.low_resolution.LowResolution" not in targets:
        raise UsageError("stage=upsampler trains on a low-resolution condition and this config has none: "
                         "add +conditioners@conditioners.low_res=low_resolution")


def run_spawned(folder: Path) -> Path | None:
    """A process Lightning started for a multi-process run: the run of the resolved config its
    node's first process wrote in the run folder (the command line it was started with is ignored)."""
    return run(OmegaConf.load(node_config_path(folder)))


def _datamodule(cfg: DictConfig, dataset, augmenter: Augmenter) -> ModalityDataModule:
    return ModalityDataModule(dataset, batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers,
                              val_fraction=cfg.data.val_fraction, seed=cfg.seed, augmenter=augmenter)


def _fit(cfg: DictConfig, module: pl.LightningModule, datamodule: ModalityDataModule, folder: Path,
         checkpoint: Path | None, metadata: dict[str, str], media_logger: pl.Callback,
         spatial_rank: int) -> pl.Trainer | None:
    """Lightning does the loop: processes, checkpoints (with run metadata), loggers, media, resume.
    Returns the trainer, or None in a process other than the first when the run diverged (the
    first raises the one-line message); a diverged run writes no final checkpoint."""
    every, last = cfg.checkpoint.every_n_train_steps, cfg.checkpoint.save_last
    checkpoints = ModelCheckpoint(dirpath=folder / "checkpoints", every_n_train_steps=every, save_last=last,
                                  save_top_k=-1 if last else 1)
    guard = NonFiniteLossGuard()
    callbacks = [checkpoints, RunMetadata(metadata), media_logger, guard, ProcessSeeds(cfg.seed)]
    logger = instantiate(cfg.logger, save_dir=str(folder)) if cfg.get("logger") else False
    trainer = build_trainer(cfg.trainer, getattr(module, "has_unused_parameters", False),
                            default_root_dir=str(folder), logger=logger, callbacks=callbacks)
    if spawned_run_dir() is None:  # once the trainer's options proved usable
        _write_config(cfg, folder, node_processes=trainer.num_devices)
    apply_module_options(module, cfg.trainer, spatial_rank)
    with shared_run_dir(folder):
        trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint)
    if guard.diverged_at is not None:
        if not trainer.is_global_zero:
            return None
        kept = checkpoints.last_model_path or checkpoints.best_model_path or (checkpoint and str(checkpoint))
        raise UsageError(divergence_message(guard.diverged_at, guard.bad_loss, kept,
                                            cfg.optim.optimizer.get("lr")))
    # always resumable from the end (full state: optimizer, loops, callbacks)
    trainer.save_checkpoint(folder / "checkpoints" / "last.ckpt", weights_only=False)
    return trainer


def _write_config(cfg: DictConfig, folder: Path, node_processes: int) -> None:
    """The resolved config: ``config.yaml`` (the run's record, by the first process) and, when a
    node runs several processes, by each node's first process the copy that the processes
    Lightning starts on that node read (written before it starts them)."""
    resolved = OmegaConf.to_yaml(cfg, resolve=True)
    targets = ([folder / "config.yaml"] if owns_run_folder() else []) + \
        ([node_config_path(folder)] if node_processes > 1 and first_on_node() else [])
    for target in targets:
        with atomic_path(target) as tmp:
            tmp.write_text(resolved)


def _train_diffusion(cfg: DictConfig, modality: Modality, dataset, checkpoint: Path | None,
                     augmenter: Augmenter) -> Path | None:
    first_stage = _attach_first_stage(cfg, modality) if cfg.autoencoder.get("bundle") else None
    if augmenter and first_stage is not None and cfg.autoencoder.cache_latents:
        raise UsageError("augment= changes data-space items, and autoencoder.cache_latents=true trains on stored "
                         "latents; set autoencoder.cache_latents=false or augment=none")
    classes = dataset_classes(dataset, f"data ({type(dataset).__name__})")
    num_classes = num_classes_for(classes)
    module = build_diffusion_module(cfg, modality, num_classes)
    check_weights_fit(module, checkpoint)
    run_dir = open_run_folder(cfg, checkpoint)
    write_data_report(dataset, run_dir)
    if cfg.get("init") and checkpoint is None:  # a resumed run has its own weights
        print(warm_start(module.model, str(cfg.init), run_dir))
    latent = module.model.latent
    if latent is not None:
        if first_stage is None:
            raise UsageError("a latent model needs its first stage: autoencoder=pretrained autoencoder.bundle=PATH")
        latent.load_state_dict(first_stage)
        if cfg.autoencoder.cache_latents:
            key = hashlib.sha256((file_sha256(Path(cfg.autoencoder.bundle).expanduser())
                                  + OmegaConf.to_yaml(cfg.data.dataset, resolve=True)).encode()).hexdigest()
            cache = cfg.autoencoder.cache_path or run_dir / "latents.safetensors"
            dataset = cached_latents(dataset, latent, cache, key, batch_size=cfg.data.batch_size)
    samples = SampleLogger(modality, num_classes, run_dir / "samples", every_n_steps=cfg.samples.every_n_steps,
                           n=cfg.samples.n, steps=cfg.samples.steps, guidance=cfg.samples.guidance,
                           sampler=OmegaConf.to_container(cfg.sampler))
    trainer = _fit(cfg, module, _datamodule(cfg, dataset, augmenter), run_dir, checkpoint, run_metadata(cfg, classes), samples,
                   modality.spatial_rank)
    weights = _final_weights(trainer)
    if weights is None:
        return None
    bundle = save_bundle(run_dir / "model.safetensors", weights, run_metadata(cfg, classes))
    print(f"model bundle: {bundle}")
    return bundle


def _final_weights(trainer: pl.Trainer | None) -> dict[str, torch.Tensor] | None:
    """The bundle weights after training, in the first process (None elsewhere). Every process
    takes part in gathering them (a sharded strategy holds a slice of each tensor per process)."""
    if trainer is None:
        return None
    weights = bundle_weights(trainer.strategy.lightning_module_state_dict())
    return weights if trainer.is_global_zero else None


def _attach_first_stage(cfg: DictConfig, modality: Modality) -> dict[str, torch.Tensor]:
    """Read an autoencoder bundle; record its network and scale in ``cfg.autoencoder`` (so the
    diffusion bundle rebuilds it alone) and return its ``latent.*`` weights."""
    weights, metadata, ae_cfg = read_run(cfg.autoencoder.bundle, "autoencoder")
    ae_modality = build_modality(ae_cfg)
    if ae_modality.shape != modality.shape:
        raise UsageError(f"autoencoder '{cfg.autoencoder.bundle}' was trained on items of shape "
                         f"{list(ae_modality.shape)}, this data has {list(modality.shape)}")
    scale = _scale_factor(cfg.autoencoder.bundle, metadata.get("scale_factor"))
    with open_dict(cfg):
        cfg.autoencoder.net = ae_cfg.first_stage.net
        cfg.autoencoder.scale_factor = scale
    return {"scale_factor": torch.tensor(scale), **
            {f"autoencoder.{k}": v for k, v in subset(weights, "autoencoder").items()}}


def _scale_factor(bundle: str, text: str | None) -> float:
    """An autoencoder bundle's latent scale factor: a finite positive number, else one line."""
    try:
        scale = float(str(text))
    except ValueError:
        scale = math.nan
    if not (math.isfinite(scale) and scale > 0):
        raise UsageError(f"autoencoder '{bundle}' holds no usable latent scale factor ({text!r}); train it again with "
                         f"stage=autoencoder")
    return scale


def _train_autoencoder(cfg: DictConfig, modality: Modality, dataset, checkpoint: Path | None,
                       augmenter: Augmenter) -> Path | None:
    module = build_autoencoder_module(cfg, modality)
    datamodule = _datamodule(cfg, dataset, augmenter)
    check_weights_fit(module, checkpoint)
    run_dir = open_run_folder(cfg, checkpoint)
    write_data_report(dataset, run_dir)
    classes = dataset_classes(dataset, f"data ({type(dataset).__name__})")
    recon = ReconstructionLogger(modality, run_dir / "reconstructions", every_n_steps=cfg.samples.every_n_steps,
                                 n=cfg.samples.n)
    trainer = _fit(cfg, module, datamodule, run_dir, checkpoint, run_metadata(cfg, classes, kind="autoencoder"),
                   recon, modality.spatial_rank)
    if trainer is None:
        return None
    autoencoder = module.autoencoder.eval()
    scale = estimate_scale_factor(autoencoder, datamodule.train_dataloader(), cfg.first_stage.scale_batches)
    held_out = _held_out_psnr(module, datamodule)
    weights = _final_weights(trainer)
    if weights is None:
        return None
    metadata = run_metadata(cfg, classes, kind="autoencoder", scale_factor=repr(scale),
                            held_out_psnr_db=repr(held_out))
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
