"""``diffusionkit cascade``: one bundle holding a base model and its super-resolution stages
(:func:`diffusionkit.bundle.save_cascade_bundle`), checked to fit together before it is written."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from diffusionkit.apps.common import output_dir, require_values
from diffusionkit.bundle import cascade_parts, load_model, read_run, save_cascade_bundle
from diffusionkit.errors import UsageError


def run(cfg: DictConfig) -> Path:
    require_values(cfg)
    parts = cascade_parts(cfg.ckpt)
    if not parts:
        raise UsageError(f"ckpt={cfg.ckpt} names one model; a cascade is a base and its upsamplers: "
                         f"ckpt=BASE,UPSAMPLER[,...]")
    cascade = load_model(parts)  # refuses stages that do not fit together
    stages = [read_run(stage.path, "diffusion", for_training=False)[:2] for stage in cascade.stages]
    out = output_dir("cascade", cfg.out)
    path = save_cascade_bundle(out / "cascade.safetensors", stages)
    shapes = " -> ".join("x".join(map(str, stage.modality.shape)) for stage in cascade.stages)
    print(f"wrote {path}: {len(stages)} stages ({shapes}); pass ckpt={path} to any command")
    return path
