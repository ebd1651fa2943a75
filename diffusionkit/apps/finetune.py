"""``diffusionkit finetune``: adapt a bundle to a user's own samples, as a small adapter file.

The base keeps its classes; the folder's other class names are added (the class-label
conditioner grows, :meth:`~diffusionkit.nets.conditioners.ClassLabel.resize`). ``method=lora``
trains low-rank updates of the matching layers (Hu et al. 2022, :mod:`diffusionkit.nets.lora`)
and the class embeddings, and writes ``out/adapter.safetensors`` (:mod:`diffusionkit.adapters`);
``method=full`` trains every weight of the net and writes a whole bundle. The base's classes the
folder does not hold are rehearsed from the base's own samples (``prior``: DreamBooth's
prior preservation, Ruiz et al. 2023), so fine-tuning forgets them less. Forgetting is
measured: samples of the base's classes, judged by the base's recogniser, before and after.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections import Counter
from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig, open_dict

from diffusionkit.adapters import CLASS_TABLE, LORA_PREFIX, adapter_metadata
from diffusionkit.apps.common import output_dir, require_values, write_recipe
from diffusionkit.apps.evaluate_real import judge_augmenter, real_dataset
from diffusionkit.bundle import FORMAT, LoadedModel, diffusion_weights, load_model, run_metadata, save_bundle
from diffusionkit.diffusion.model import DiffusionModel
from diffusionkit.errors import UsageError
from diffusionkit.evaluation import TensorItems
from diffusionkit.names import known_class_named
from diffusionkit.nets.conditioners import LABEL, ClassLabel
from diffusionkit.nets.lora import adaptable_layers, add_lora, fold_lora, lora_weights

#: fewer files than this in a class draws a warning (with the count)
FEW_FILES = 5


def run(cfg: DictConfig) -> Path:
    data = cfg.get("data")
    with open_dict(cfg):
        cfg.pop("data", None)
    require_values(cfg)
    if not data:
        raise UsageError("finetune needs your samples: data=folder data.dataset.root=DIR (one sub-folder per class)")
    base = load_model(cfg.ckpt)
    if base.base is not None:
        raise UsageError(f"ckpt={cfg.ckpt} is an adapter; fine-tune its base, or merge it first (merge=true)")
    x, labels, classes, files = samples(base, data)
    prior_x, prior_labels = prior_items(base, labels, cfg)
    starts = new_class_starts(base, x, labels, classes, cfg)
    model = base.module.train()
    if len(classes) > len(base.classes):
        _label(model).resize(len(classes))
        _start_new_classes(model, starts)
    added = prepare(model, cfg)
    out = output_dir("finetune", cfg.out)
    start = time.perf_counter()
    precision = train(model, base, torch.cat([x, prior_x]), torch.cat([labels, prior_labels]), cfg)
    seconds = time.perf_counter() - start
    model.eval()
    paths = write(model, base, added, classes, cfg, out)
    report = {"seconds": round(seconds, 1), "precision": precision, "items": len(labels), "read_files": files, "classes": classes,
              "new_classes": classes[len(base.classes):],
              "new_classes_started_from": {classes[new]: classes[old] for new, old in starts.items()},
              "prior": {"per_class": int(cfg.prior), "classes": sorted({classes[int(i)] for i in prior_labels})},
              "files": {k: str(v) for k, v in paths.items()},
              "sizes_mb": {k: round(v.stat().st_size / 1e6, 3) for k, v in paths.items()}}
    report["forgetting"] = forgetting(base, model, cfg)
    write_recipe(out, cfg, base, result=report)
    print_report(report, cfg)
    return out


def samples(base: LoadedModel, data: DictConfig) -> tuple[torch.Tensor, torch.Tensor, list[str], int | None]:
    """Every item of the user's data, labelled with the base's class indices, new class names
    appended after the base's, and how many files they come from (None where the dataset does
    not say); a one-line warning for any class with fewer than FEW_FILES."""
    dataset = real_dataset(base, data)
    names = list(getattr(dataset, "classes", []) or [])
    if not names:
        raise UsageError("the data names no classes: give one sub-folder per class")
    same = {name: known_class_named(name, base.classes) for name in names}
    renamed = {name: known for name, known in same.items() if known not in (None, name)}
    if renamed:
        print(f"note: {', '.join(f'{name!r} is the base class {known!r}' for name, known in renamed.items())} "
              "(names match ignoring case, spaces and a plural s; rename a folder to make a class of its own)")
    classes = list(base.classes) + [n for n in names if same[n] is None]
    x, labels = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        x.append(item["x"])
        name = names[int(item["label"])]
        labels.append(classes.index(same[name] or name))
    if not x:
        raise UsageError("the data holds no files to learn from")
    files = getattr(dataset, "files", None)
    files = list(files) if files is not None and len(files) == len(labels) else None  # one per item, or unknown
    per_item = files if files is not None else range(len(labels))  # a long file gives several items
    counts = Counter(classes[label] for label in dict(zip(per_item, labels)).values())
    few = {name: n for name, n in counts.items() if n < FEW_FILES}
    if few:
        print(f"warning: few files to learn from: {', '.join(f'{n} {name}' for name, n in few.items())} "
              f"(at least {FEW_FILES} per class learn better)", file=sys.stderr)
    return torch.stack(x).float(), torch.tensor(labels), classes, len(set(files)) if files is not None else None


def prior_items(base: LoadedModel, labels: torch.Tensor, cfg: DictConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``cfg.prior`` samples of every base class that ``labels`` (the user's items) lack, drawn
    from the base itself before it changes: rehearsing them keeps the base's classes (prior
    preservation, Ruiz et al. 2023's DreamBooth). A class the user gives is learned from the user."""
    absent = [c for c in range(len(base.classes)) if not bool((labels == c).any())]
    n = int(cfg.prior)  # options.py checked it is a whole number >= 0
    wanted = torch.tensor(absent, dtype=torch.long).repeat_interleave(n)
    if len(wanted) == 0:
        return torch.empty(0, *base.module.data_shape), wanted
    return class_samples(base.module, wanted, cfg, PRIOR_STREAM).float().cpu(), wanted


#: seed offsets of the base's samples: those rehearsed never share noise with those that measure forgetting
PRIOR_STREAM, FORGETTING_STREAM = 1, 0


def class_samples(sampler: DiffusionModel, labels: torch.Tensor, cfg: DictConfig, stream: int) -> torch.Tensor:
    """Samples of ``labels`` as fine-tuning draws them (``steps_per_sample`` steps, guidance 2),
    from the noise of ``seed + stream``."""
    with torch.no_grad():
        return sampler.sample(len(labels), labels, steps=int(cfg.steps_per_sample), guidance_scale=2.0,
                              generator=torch.Generator().manual_seed(int(cfg.seed) + stream))


def new_class_starts(base: LoadedModel, x: torch.Tensor, labels: torch.Tensor, classes: list[str],
                     cfg: DictConfig) -> dict[int, int]:
    """``new_class_init=heard``: each new class starts from the embedding of the base class the
    base hears most often in that class's files, by its recogniser, else its own diffusion
    classifier: a ride the starter hears as a crash starts as crash, as textual inversion starts a
    new word from a related one (Gal et al. 2022), so fine-tuning learns the difference rather
    than the whole sound. ``none``: from the null class."""
    if cfg.new_class_init == "none":
        return {}
    starts = {}
    for new in range(len(base.classes), len(classes)):
        heard = base.recognize(x[labels == new])
        if heard is not None and len(heard):
            starts[new] = int(torch.bincount(heard.cpu(), minlength=len(base.classes)).argmax())
    return starts


def _start_new_classes(model: DiffusionModel, starts: dict[int, int]) -> None:
    table = _label(model).embedder.embedding.weight
    with torch.no_grad():
        for new, old in starts.items():
            table[new] = table[old]


def _label(model: DiffusionModel) -> ClassLabel:
    label = model.conditioners[LABEL] if LABEL in model.conditioners else None
    if not isinstance(label, ClassLabel):
        raise UsageError("finetune adapts class-conditional models; this model has no classes")
    return label


def prepare(model: DiffusionModel, cfg: DictConfig) -> dict:
    """Make the weights fine-tuning trains trainable: the low-rank factors of the matching layers
    and the class embeddings (``lora``), or the whole net (``full``); the EMA restarts from them."""
    added = {}
    if cfg.method == "lora":
        model.net.requires_grad_(False)
        names = adaptable_layers(model.net.backbone, str(cfg.targets))
        if not names:
            raise UsageError(f"targets={cfg.targets} matches no layer of this net; try targets='.*'")
        added = add_lora(model.net.backbone, names, int(cfg.rank), float(cfg.alpha))
        _label(model).requires_grad_(True)
    else:
        model.net.requires_grad_(True)
    model.reset_ema()
    return added


def train(model: DiffusionModel, base: LoadedModel, x: torch.Tensor, labels: torch.Tensor, cfg: DictConfig) -> str:
    """``cfg.steps`` optimiser steps (Lightning does the loop) on the base's own diffusion recipe
(schedule, parameterisation, loss weighting, label dropout: the model is the base's) with its
training augmentations, in ``precision`` (auto: bf16 autocast where the CPU computes bf16
natively) with channels-last convolutions; the optimiser is fine-tuning's (``lr``: low-rank
updates want more than a base's). Returns Lightning's name of the precision it trained in."""
    import lightning.pytorch as pl

    from diffusionkit.devices import resolve_precision, to_channels_last
    from diffusionkit.training.datamodule import ModalityDataModule
    from diffusionkit.training.diffusion_module import DiffusionModule

    torch.manual_seed(int(cfg.seed))
    trainable = partial(torch.optim.AdamW, lr=float(cfg.lr), weight_decay=0.0)
    module = DiffusionModule(model, optimizer=lambda params: trainable([p for p in params if p.requires_grad]))
    augmenter = recipe_augmenter(base, cfg)
    data = ModalityDataModule(TensorItems(x, labels), batch_size=min(int(cfg.batch_size), len(labels)),
                              val_fraction=0.0, seed=int(cfg.seed), augmenter=augmenter or None)
    to_channels_last(model, base.modality.spatial_rank)  # as trainer=cpu trains: faster convolutions
    precision = {"bf16": "bf16-mixed", "fp32": "32-true"}[resolve_precision(cfg.precision, torch.device("cpu"))]
    trainer = pl.Trainer(max_steps=int(cfg.steps), accelerator="cpu", precision=precision, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(LeafSpec|smaller than the logging interval|eval mode|"
                                                  "Total length of).*")
        trainer.fit(module, datamodule=data)
    return precision


def recipe_augmenter(base: LoadedModel, cfg: DictConfig):
    """``augmentations=auto``: the augmentations the base was trained with (its recorded
    ``augment``), else all the modality offers; otherwise the ones named (or ``none``). (Not
    ``augment=``: that is the train command's config group, which Hydra would read it as.)"""
    from diffusionkit.training.augment import build_augmenter

    recorded = base.config.get("augment")
    if cfg.augmentations == "auto" and recorded:
        return build_augmenter(recorded, base.modality)
    return judge_augmenter(base, cfg.augmentations, cfg.augment_p)


def write(model: DiffusionModel, base: LoadedModel, added: dict, classes: list[str], cfg: DictConfig,
          out: Path) -> dict[str, Path]:
    """The adapter (``lora``: the EMA's factors and class table) and, on request or for
    ``full``, the whole fine-tuned bundle."""
    paths = {}
    ema_net = model.ema.module
    if cfg.method == "lora":
        factors = lora_weights({name: ema_net.backbone.get_submodule(name) for name in added})
        weights = {f"{LORA_PREFIX}backbone.{k}": v for k, v in factors.items()}
        weights[CLASS_TABLE] = _label_table(ema_net)
        metadata = adapter_metadata(_base_name(base, cfg), base.sha256, classes, int(cfg.rank), float(cfg.alpha),
                                    format=FORMAT, method="lora", steps=str(cfg.steps))
        paths["adapter"] = save_bundle(out / "adapter.safetensors", weights, metadata)
    if cfg.method == "full" or cfg.get("merge"):
        for net in (model.net, model.ema.module):
            fold_lora(net.backbone, added)
        metadata = run_metadata(base.config, classes, finetuned_from=f"{_base_name(base, cfg)} (sha256 {base.sha256})")
        paths["bundle"] = save_bundle(out / "model.safetensors", diffusion_weights(model), metadata)
    return paths


def _label_table(net: torch.nn.Module) -> torch.Tensor:
    return net.conditioners[LABEL].embedder.embedding.weight.detach().cpu().clone()


def _base_name(base: LoadedModel, cfg: DictConfig) -> str:
    """How the adapter names its base: a shipped bundle by its name, a file by its absolute path."""
    given = str(cfg.ckpt)
    return given if not Path(given).expanduser().exists() else str(Path(given).expanduser().resolve())


def forgetting(base: LoadedModel, model: DiffusionModel, cfg: DictConfig) -> dict | None:
    """Samples of each base class from the base and from the fine-tuned model (same seeds),
    named by the base's recogniser: the share recognised as their class, before and after."""
    n = int(cfg.forgetting)
    if n == 0 or base.recognizer is None:
        return None
    fresh = load_model(cfg.ckpt)
    labels = torch.arange(len(base.classes)).repeat_interleave(n)
    rates = {}
    for name, sampler in (("before", fresh.module), ("after", model)):
        x = class_samples(sampler, labels, cfg, FORGETTING_STREAM)
        rates[name] = float((base.recognizer(x) == labels).float().mean())
    return {"per_base_class": n, **{k: round(v, 3) for k, v in rates.items()}}


def print_report(report: dict, cfg: DictConfig) -> None:
    started = report["new_classes_started_from"]
    new = ", ".join(f"{name}, started from {started[name]}" if name in started else name
                    for name in report["new_classes"]) or "none"
    items, files = report["items"], report["read_files"]
    read = f"{items} files" if files in (None, items) else f"{files} files ({items} items)"
    print(f"finetune ({cfg.method}): {read}, classes {', '.join(report['classes'])} (new: {new}), "
          f"{cfg.steps} steps in {report['seconds']:.0f} s")
    for kind, path in report["files"].items():
        print(f"wrote {path} ({report['sizes_mb'][kind]:.2f} MB)")
    if report["forgetting"]:
        f = report["forgetting"]
        print(f"forgetting: the base's classes recognised {f['before']:.0%} before, {f['after']:.0%} after "
              f"({f['per_base_class']} samples per class, judged by the base's recogniser)")
