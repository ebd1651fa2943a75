"""``diffusionkit evaluate``: judge a model with classifiers trained on real data.

With ``data=NAME`` the judges learn real data held out by source (:mod:`evaluate_real`);
without, the model's own training data ("self-judged"). Generated items: class accuracy and a
Frechet distance to real items in the classifier's feature space; optionally the ``vary`` and
``convert`` edits of real held-out items (see :mod:`evaluate_edits`), ``label=auto``, and for a
text-conditioned model how closely items follow their prompts (:mod:`evaluate_prompts`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from diffusionkit.apps.common import (output_dir, require_values, runtime, sample_in_batches, text_condition,
                                      write_recipe)
from diffusionkit.apps.evaluate_edits import check_edit_settings, convert_scores, vary_scores
from diffusionkit.apps.evaluate_prompts import format_rows, prompt_scores, summary
from diffusionkit.apps.evaluate_time import per_step_scores, wants_per_step
from diffusionkit.apps.evaluate_upsampler import upsampler_items
from diffusionkit.bundle import LoadedModel, load_model
from diffusionkit.diffusion.cascade import low_resolution_condition
from diffusionkit.errors import UsageError
from diffusionkit.apps.evaluate_real import auto_label_accuracy, own_data, real_judge
from diffusionkit.evaluation import (SELF_EPOCHS, Judge, accuracy_by_class, features, frechet_distance, judge_per_class,
                                     predict, train_classifier)
from diffusionkit.nets.conditioners import LABEL


def run(cfg: DictConfig) -> dict:
    """Train the judge on real data, sample ``n_per_class`` per class, report the scores."""
    real = cfg.get("data")  # refers to the model's modality (${modality}): resolved with the bundle's config
    with open_dict(cfg):
        cfg.pop("data", None)
    require_values(cfg)
    model = load_model(cfg.ckpt, **runtime(cfg))
    classes = model.classes
    if len(classes) < 2:
        raise UsageError("evaluate judges class-conditional models; this model has no classes")
    upsampler = low_resolution_condition(model.module) if not model.stages else None
    required = [name for name, c in model.module.conditioners.items()
                if name not in (LABEL, upsampler) and c.drop == 0]
    if required:
        raise UsageError(f"evaluate does not yet judge models that always need a {required[0]}")
    check_edit_settings(model, cfg)
    modality = model.modality
    judge, grading = real_judge(model, real, cfg) if real else self_judge(model, cfg)
    out = output_dir("evaluate", cfg.out)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    extra = {}
    if upsampler:  # a super-resolution stage makes nothing from nothing: it upsamples real held-out items
        samples, labels, extra["upsampler"] = upsampler_items(model, judge, cfg, generator)
    else:
        labels = torch.tensor(judged_classes(classes, grading)).repeat_interleave(cfg.n_per_class)
        samples = sample_in_batches(model, len(labels), labels, cfg, cfg.batch_size, generator)
    predicted = predict(judge.model, samples)
    report = {
        **extra,
        "grading": grading,
        "generated_accuracy": float((predicted == labels).float().mean()),
        "real_heldout_accuracy": judge.heldout_accuracy,
        "per_class": accuracy_by_class(predicted, labels, list(classes)),
        "real_per_class": grading.pop("judge_per_class", None) or judge_per_class(judge, list(classes)),
        "frechet_distance": frechet_distance(features(judge.model, judge.heldout_x), features(judge.model, samples)),
        "n_per_class": cfg.n_per_class, "sampler": cfg.sampler.name, "steps": cfg.steps, "guidance": cfg.guidance,
    }
    not_judged = [name for name, rate in report["per_class"].items() if rate is None]
    if not_judged:
        grading["not_judged"] = not_judged
    if upsampler:
        pass  # the edits, prompts and label=auto below start from nothing but a class or a file
    elif wants_per_step(model, cfg.per_step):
        report["per_step"] = per_step_scores(model, judge, samples, labels, cfg)
    if cfg.vary.strengths and not upsampler:
        report["vary"] = vary_scores(model, judge, cfg, generator)
    if cfg.convert.pairs and not upsampler:
        report["convert"] = convert_scores(model, judge, cfg, generator)
    if cfg.prompts.n and text_condition(model) and not upsampler:
        report["prompts"] = prompt_scores(model, judge, cfg)
        report["prompt_summary"] = summary(report["prompts"])
    if real and cfg.auto_label_per_class and not upsampler:
        report["auto_label"] = auto_label_accuracy(model, judge, cfg.auto_label_per_class)
    (out / "evaluation.json").write_text(json.dumps(report, indent=2))
    modality.save_grid(samples[:: max(1, cfg.n_per_class // 8)], out / "grid")
    write_recipe(out, cfg, model, evaluation=report)
    print(format_report(report, out))
    return report


def judged_classes(classes: list[str], grading: dict) -> list[int]:
    """The class indices generated and judged: with real data, only those of which it holds items
    (a judge that never heard a class cannot recognise it; the report names the rest)."""
    held = grading.get("items_per_class")
    return [i for i, name in enumerate(classes) if held is None or held.get(name)]


def self_judge(model: LoadedModel, cfg: DictConfig) -> tuple[Judge, dict]:
    """A judge trained on the model's own training data (self-judged: no claim about real data)."""
    modality = model.modality
    judge = train_classifier(
        instantiate(own_data(model, "evaluate", "grade it on").dataset), modality.spatial_rank, modality.channels, len(model.classes),
        epochs=cfg.classifier.epochs or SELF_EPOCHS, batch_size=cfg.classifier.batch_size, lr=cfg.classifier.lr,
        width=cfg.classifier.width, seed=cfg.seed)
    return judge, {"judged_on": "self-judged: the model's own training data, split at random"}


def grading_line(grading: dict, accuracy: float) -> str:
    if grading["judged_on"].startswith("self"):
        return (f"SELF-JUDGED (judge trained on the model's own training data, {accuracy:.1%} on its held-out part); "
                f"grade on real data with data=NAME")
    return (f"judged on real data held out by source: {grading['items']} items from {len(grading['sources'])} "
            f"sources in {grading['folds']} folds; judge accuracy on sources it never heard: {accuracy:.1%}")


def format_report(report: dict, out: Path) -> str:
    held = "its own held-out training data" if report["grading"]["judged_on"].startswith("self") else \
        "real held-out data"
    lines = [grading_line(report["grading"], report["real_heldout_accuracy"]),
             f"{'class':<12} accuracy   (the judge on {held} of the class)"]
    real = {name: "n/a" if rate is None else f"{rate:.1%}" for name, rate in report["real_per_class"].items()}
    lines += [f"{name:<12} {acc:6.1%}     ({real[name]})" for name, acc in report["per_class"].items()
              if acc is not None]
    if report["grading"].get("not_judged"):
        lines.append(f"not generated or judged (no real items of them in data=): "
                     f"{', '.join(report['grading']['not_judged'])}")
    lines += [f"{'all':<12} {report['generated_accuracy']:6.1%}   (judge on {held}: "
              f"{report['real_heldout_accuracy']:.1%})",
              f"Frechet distance to {held} (classifier features): {report['frechet_distance']:.2f}"]
    if "upsampler" in report:
        up = report["upsampler"]
        lines.append(f"upsampler x{up['factors']}: {up['items']} real held-out items degraded and upsampled keep "
                     f"their class {up['class_kept']:6.1%} (resized back up: {up['class_kept_resized']:.1%}; "
                     f"originals: {up['class_kept_originals']:.1%})")
    if "per_step" in report:
        step = report["per_step"]
        lines.append(f"per step: {step['step_accuracy']:6.1%} recognised (step classifier on real held-out steps: "
                     f"{step['step_classifier_real_heldout_accuracy']:.1%}); step-to-step change "
                     f"{step['step_change_generated']:.4f} vs real {step['step_change_real']:.4f} "
                     f"(ratio {step['step_change_ratio']:.2f})")
    if "auto_label" in report:
        lines.append(f"label=auto names the true class of {report['auto_label']['accuracy']:6.1%} of "
                     f"{report['auto_label']['items']} real held-out items")
    for row in report.get("vary", []):
        lines.append(f"vary label={row['label']} strength {row['strength']:.2f}: class kept {row['class_kept']:6.1%} "
                     f"(true class {row['true_class_kept']:6.1%}), diversity {row['diversity']:.3f} "
                     f"(1.0 = as spread as the held-out items)")
    for row in report.get("convert", []):
        envelope = f", envelope correlation {row['envelope_correlation']:.2f}" if "envelope_correlation" in row else ""
        lines.append(f"convert {row['source']} -> {row['target']} ({row['method']}) strength {row['strength']:.2f}: "
                     f"recognised as {row['target']} {row['target_rate']:6.1%}{envelope}")
    if report.get("prompts"):
        lines += format_rows(report["prompts"])
    lines.append(f"report: {out / 'evaluation.json'}")
    return "\n".join(lines)
