"""Scores per time step, for modalities whose steps are items in their own right (a clip's stills).

Each step of a generated item is judged by a classifier trained on the steps of
real items, and the step-to-step change of generated items is compared with real ones
(temporal consistency: too little is a still, too much is flicker).
"""

from __future__ import annotations

from omegaconf import DictConfig
from torch import Tensor

from diffusionkit.apps.edits import edit_axis
from diffusionkit.bundle import LoadedModel
from diffusionkit.evaluation import SELF_EPOCHS, Judge, TensorItems, predict, step_change, time_slices, train_classifier


def wants_per_step(model: LoadedModel, setting: str | bool) -> bool:
    """``auto``: when the modality declares that its steps are items a classifier can judge
    (:attr:`~diffusionkit.modality.Modality.steps_are_items`, with a time axis)."""
    if setting == "auto":
        return model.modality.time_axis is not None and model.modality.steps_are_items
    return bool(setting)


def per_step_scores(model: LoadedModel, judge: Judge, samples: Tensor, labels: Tensor, cfg: DictConfig) -> dict:
    """Per-step class accuracy of ``samples`` and their step-to-step change versus real items."""
    axis = edit_axis(model.modality) + 1  # batch axis first
    steps = model.modality.shape[axis - 1]
    real_steps = time_slices(judge.heldout_x, axis)
    step_judge = train_classifier(
        TensorItems(real_steps, judge.heldout_labels.repeat_interleave(steps)), model.modality.spatial_rank - 1,
        model.modality.channels, len(model.classes), epochs=cfg.classifier.epochs or SELF_EPOCHS,
        batch_size=cfg.classifier.batch_size, lr=cfg.classifier.lr, width=cfg.classifier.width, seed=cfg.seed)
    predicted = predict(step_judge.model, time_slices(samples, axis))
    real_change, generated_change = step_change(judge.heldout_x, axis), step_change(samples, axis)
    return {
        "step_accuracy": float((predicted == labels.repeat_interleave(steps)).float().mean()),
        "step_classifier_real_heldout_accuracy": step_judge.heldout_accuracy,
        "step_change_real": float(real_change.mean()),
        "step_change_generated": float(generated_change.mean()),
        "step_change_ratio": float(generated_change.mean() / real_change.mean().clamp_min(1e-12)),
    }
