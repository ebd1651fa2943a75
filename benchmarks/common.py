"""Shared helpers for the benchmark scripts: building a run from the real configs, one
measurement per fresh process (so peak memory is its own), tables."""

from __future__ import annotations

import multiprocessing as mp
import resource
from queue import Empty
from typing import Any, Callable, Sequence

import torch

from hydra.utils import instantiate
from omegaconf import DictConfig


def build_image_run(batch_size: int, extra: Sequence[str] = ()) -> tuple:
    """The module, data module and config that ``diffusionkit train modality=image data=shapes``
    would build (default net), without a run folder."""
    from diffusionkit.config import compose_config
    from diffusionkit.training.build import build_diffusion_module, build_modality, num_classes_for
    from diffusionkit.training.datamodule import ModalityDataModule

    cfg: DictConfig = compose_config(
        "train", ["modality=image", "data=shapes", "data.dataset.num_samples=2048",
                  f"data.batch_size={batch_size}", *extra])
    modality = build_modality(cfg)
    datamodule = ModalityDataModule(instantiate(cfg.data.dataset), batch_size=batch_size, val_fraction=0.0)
    module = build_diffusion_module(cfg, modality, num_classes_for(datamodule.classes))
    return module, datamodule, cfg


def real_kits_dataset(model, root: str | list[str] | None = None, split: str = "all"):
    """The kits of the ``data=drumkits`` a bundle was trained on (``split``, ``root``: one path or a
    list, in place of its own when given), as its modality prepares them; SystemExit in one line when
    the kits are not there (Debian's hydrogen-drumkits not installed)."""
    from omegaconf import OmegaConf

    data = OmegaConf.merge(model.config.data, {"dataset": {"split": split, **({"root": root} if root else {})}})
    try:
        return instantiate(data.dataset)
    except Exception as error:  # Hydra wraps the dataset's own one-line reason
        raise SystemExit(f"{error.__cause__ or error}") from None


def kits_parser(doc: str):
    """The options of the benchmarks that read other drum kits (each adds its source's)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--ckpt", default="drums_starter", help="an audio bundle with classes of data=drumkits")
    parser.add_argument("--work", default=None, help="where the kits are written (default: a temporary folder)")
    return parser


def labelled_bundle(ckpt: str, work: str | None):
    """The bundle that names the kits' one-shots, once ``work`` (where they go) is known to be new;
    SystemExit in one line otherwise."""
    from pathlib import Path

    from diffusionkit.bundle import load_model

    if work and Path(work).exists():
        raise SystemExit(f"{work} exists; remove it or name another --work")
    model = load_model(ckpt)
    if not model.classes:
        raise SystemExit(f"--ckpt {ckpt} has no classes to name")
    return model


def report_auto_labels(model, dataset, what: str) -> None:
    """Print ``label=auto`` (the bundle's recogniser) on every item of a drum-kits ``dataset``:
    overall, balanced over classes, per kit, and per class with what each class was heard as."""
    from collections import Counter

    import numpy as np

    if list(dataset.classes) != list(model.classes):
        raise SystemExit(f"the kits were read with classes {list(dataset.classes)}, the model has {model.classes}")
    x = torch.stack([dataset[i]["x"] for i in range(len(dataset))]).float()
    labels = torch.tensor(dataset.labels)
    named = model.recognize(x)
    right = (named == labels).numpy()
    kits, classes = np.array(dataset.kits), list(dataset.classes)
    present = [c for c in range(len(classes)) if (labels == c).any()]
    balanced = np.mean([right[labels.numpy() == c].mean() for c in present])
    print(f"{len(labels)} one-shots from {len(set(kits))} {what} after preprocessing (near-duplicates dropped)\n")
    print_table(("label=auto", "right"), [("all one-shots", f"{right.mean():.1%}"),
                                          ("balanced over classes", f"{balanced:.1%}"),
                                          *((kit, f"{right[kits == kit].mean():.0%} of {int((kits == kit).sum())}")
                                            for kit in sorted(set(kits)))])
    print()
    rows = []
    for c in present:
        mask = labels == c
        heard = Counter(classes[int(i)] for i in named[mask])
        rows.append((classes[c], int(mask.sum()), f"{right[mask.numpy()].mean():.0%}",
                     ", ".join(f"{name} {n}" for name, n in heard.most_common())))
    print_table(("class", "one-shots", "label=auto right", "heard as"), rows)


def cpu_precision(name: str = "auto") -> str:
    """``fp32`` or ``bf16``: what ``precision=name`` resolves to on this CPU (``auto``: bf16 where
    the CPU computes it natively, as the recipes' ``trainer.precision: auto``)."""
    from diffusionkit.devices import resolve_precision

    return resolve_precision(name, torch.device("cpu"))


def train_step(model, optimizer: torch.optim.Optimizer, data: dict, precision: str) -> None:
    """One training step of a DiffusionModel as the recipes train: loss (under bf16 autocast
    where ``precision`` is ``bf16``), backward, optimiser step."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = model.loss(data)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A markdown table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(queue: mp.Queue, fn: Callable[..., Any], args: tuple) -> None:
    torch.manual_seed(0)
    queue.put((fn(*args), peak_rss_mib()))


def measure_in_fresh_process(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``fn(*args)`` in a spawned process (``fn`` at module level); return (its value, peak RSS MiB)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue, fn, args))
    process.start()
    while True:
        try:
            value = queue.get(timeout=5)
            break
        except Empty:
            if not process.is_alive():
                raise SystemExit(f"benchmark '{fn.__name__}' failed (exit code {process.exitcode}); see above")
    process.join()
    return value
