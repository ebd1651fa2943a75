"""``diffusionkit recognizer``: a copy of a bundle that names the class of an input by a trained
recogniser (:mod:`diffusionkit.recognizer`) rather than by the diffusion model's own guess."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig, open_dict

from diffusionkit.apps.common import output_dir, require_values
from diffusionkit.apps.evaluate_real import judge_augmenter, labelled_items, own_data, real_dataset
from diffusionkit.bundle import load_model, read_run, save_bundle
from diffusionkit.errors import UsageError
from diffusionkit.evaluation import TensorItems
from diffusionkit.recognizer import PREFIX, fit_recognizer, recognizer_entries


def run(cfg: DictConfig) -> Path:
    """Train the recogniser and write ``out/model.safetensors``: the bundle plus the recogniser."""
    data = cfg.get("data")
    with open_dict(cfg):
        cfg.pop("data", None)
    require_values(cfg)
    model = load_model(cfg.ckpt)
    if model.base is not None:
        raise UsageError(f"ckpt={cfg.ckpt} is an adapter; a recogniser is stored in a whole bundle: write one with "
                         f"the same finetune and merge=true, then give its model.safetensors as ckpt= (with "
                         f"data=folder data.dataset.root=<your folder> to learn its new classes)")
    if len(model.classes) < 2:
        raise UsageError("recognizer needs a class-conditional model; this model has no classes")
    dataset = real_dataset(model, data if data else own_data(model, "recognizer", "train it on"))
    items = labelled_items(dataset, model.classes, f"data {type(dataset).__name__}")
    counts = torch.bincount(items.labels, minlength=len(model.classes)).tolist()
    present = [c for c, count in enumerate(counts) if count]
    if len(present) < 2:
        held = ", ".join(f"{model.classes[c]}: {counts[c]}" for c in present)
        left_out = f"; left out, as classes the model does not have: {items.unknown_classes}" if items.unknown_classes else ""
        raise UsageError(f"recognizer: the data holds items of only one of the model's classes ({held}{left_out}); a "
                         f"recogniser tells classes apart, so give it items of at least two of: {', '.join(model.classes)}")
    # not ``augment``: that name is the training command's config group, so Hydra would read it as one
    augmenter = judge_augmenter(model, cfg.augmentations, cfg.augment_p)
    start = time.perf_counter()
    recognizer, spec = fit_recognizer(TensorItems(items.x, items.labels), model.modality.spatial_rank,
                                      items.x.shape[1], len(model.classes), epochs=int(cfg.epochs),
                                      batch_size=int(cfg.batch_size), lr=float(cfg.lr), width=int(cfg.width),
                                      seed=int(cfg.seed), augment=augmenter or None, draws=int(cfg.draws))
    spec["sources"] = sorted(set(items.sources)) if items.sources else []
    weights, metadata, _ = read_run(model.path, "diffusion")
    weights = {k: v for k, v in weights.items() if not k.startswith(PREFIX + ".")}
    added_weights, added_metadata = recognizer_entries(recognizer, spec)
    out = output_dir("recognizer", cfg.out)
    path = save_bundle(out / "model.safetensors", {**weights, **added_weights}, {**metadata, **added_metadata})
    print(f"recognizer: {len(items.labels)} items ({', '.join(f'{n} {c}' for c, n in zip(model.classes, counts))}), "
          f"{cfg.epochs} epochs in {time.perf_counter() - start:.0f} s")
    if items.unknown_classes:
        print(f"left out (classes the model does not have): {items.unknown_classes}")
    unheard = [c for c, count in zip(model.classes, counts) if not count]
    if unheard:
        print(f"warning: no items of {', '.join(unheard)}: the recogniser will hardly ever name them")
    print(f"wrote {path}: the bundle with its recognizer (label=auto now uses it)")
    return path
