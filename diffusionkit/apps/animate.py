"""``diffusionkit animate``: bring a still to life along the time axis.

The first ``keep`` steps come from ``input`` (e.g. a frame, which a video modality reads as a
clip of identical frames) and stay fixed at every sampling step; the rest is generated
coherently (RePaint-style masking, Lugmayr et al. 2022). With ``last=FILE`` the final step is
fixed too, so the steps in between interpolate from one frame to the other.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from diffusionkit.apps.common import repeat, sample_in_batches
from diffusionkit.apps.edits import edit_axis, end_steps_mask, run_edit
from diffusionkit.errors import UsageError
from diffusionkit.plugin_calls import read_media


def run(cfg: DictConfig) -> Path:
    def animate(model, source, labels, generator, conditioning):
        if model.modality.time_axis is None:
            raise UsageError(f"animate works along a time axis and this model's items ({type(model.modality).__name__}) "
                             "have none; redo a region with inpaint start= end=, or make variations with vary")
        mask = end_steps_mask(model.modality, int(cfg.keep), 1 if cfg.last else 0)
        if cfg.last:  # the written source shows both kept ends
            axis = edit_axis(model.modality)
            final = read_media(model.modality, cfg.last, "last")
            source.narrow(axis, source.shape[axis] - 1, 1).copy_(final.narrow(axis, final.shape[axis] - 1, 1))
        return sample_in_batches(model, cfg.n, labels, cfg, cfg.batch_size, generator,
                                 known=repeat(source, cfg.n), mask=mask, conditions=conditioning)

    return run_edit(cfg, "animate", "animated", animate)
