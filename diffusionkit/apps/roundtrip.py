"""``diffusionkit roundtrip``: file -> model space -> file for any modality, with its error."""

from __future__ import annotations

import json
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from diffusionkit.apps.common import output_dir, require_values
from diffusionkit.names import inside
from diffusionkit.plugin_calls import plugin_call


def run(cfg: DictConfig) -> dict[str, float]:
    require_values(cfg)
    modality = instantiate(cfg.modality)
    out = output_dir("roundtrip", cfg.out)
    with plugin_call(modality, f"cannot roundtrip input={cfg.input}"):
        metrics = modality.roundtrip(cfg.input, inside(out, Path(str(cfg.input)).stem))
    report = {"input": str(cfg.input), "modality": OmegaConf.to_container(cfg.modality, resolve=True),
              "metrics": metrics}
    (out / "roundtrip.json").write_text(json.dumps(report, indent=2))
    width = max(len(k) for k in metrics)
    print("\n".join(f"{key:<{width}}  {value:10.3f}" for key, value in metrics.items()))
    print(f"wrote the reconstruction and roundtrip.json to {out}")
    return metrics
