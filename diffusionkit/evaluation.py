"""Judging generated samples with a classifier trained on the real data of the same dataset.

This is the "classification accuracy score" idea (Ravuri & Vinyals 2019) turned around:
a small rank-generic CNN learns the real classes; generated samples are scored by how often
it recognises the class they were conditioned on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, random_split

from diffusionkit.nets.layers import conv_nd, norm


#: epochs of a judge of a model's own training data unless told (evaluate's classifier.epochs)
SELF_EPOCHS = 8


class Classifier(nn.Module):
    """Three strided conv stages and a linear head over a coarse grid; works for any spatial rank.

    The head sees the features averaged over a ``grid`` of cells per spatial axis rather than
    over the whole item, so it knows roughly *where* a pattern lies (a kick's energy sits low in a
    spectrogram, a hat's high); averaging everything away cost 11 points on real drums from kits
    the judge never heard (``benchmarks/bench_real_judge.py``).
    """

    def __init__(self, spatial_rank: int, in_channels: int, num_classes: int, width: int = 32, grid: int = 4) -> None:
        super().__init__()
        widths = [width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        ch = in_channels
        for out in widths:
            layers += [conv_nd(spatial_rank, ch, out, 3, padding=1), norm(out), nn.SiLU(),
                       conv_nd(spatial_rank, out, out, 3, stride=2, padding=1), norm(out), nn.SiLU()]
            ch = out
        self.body = nn.Sequential(*layers)
        self.pool = POOLS[spatial_rank]((grid,) * spatial_rank)
        self.head = nn.Linear(ch * grid**spatial_rank, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Pooled features ``[B, 4 * width]`` (for Frechet distances)."""
        return self.body(x).flatten(2).mean(-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.body(x)).flatten(1))


POOLS = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Roll every spatial axis by a random offset in [-max_shift, max_shift] (one per batch)."""
    for dim in range(2, x.ndim):
        shift = int(torch.randint(-max_shift, max_shift + 1, (1,), generator=generator))
        x = torch.roll(x, shift, dims=dim)
    return x


@dataclass
class Judge:
    """A classifier trained on real data, with the real items it never saw.

    Judged by source (see :func:`judge_by_source`), ``heldout_x`` are all the real items, each
    held out from one fold classifier: ``fold_models[heldout_folds[i]]`` never saw item ``i``'s
    source, and :meth:`predict` with ``folds`` judges each item by the classifier of its fold.
    """

    model: Classifier
    heldout_accuracy: float
    heldout_x: Tensor
    heldout_labels: Tensor
    heldout_folds: Tensor | None = None
    fold_models: list[Classifier] = field(default_factory=list)

    def predict(self, x: Tensor, folds: Tensor | None = None) -> Tensor:
        """Classes of ``x``; with ``folds`` (one per item) each by the classifier that never saw
        that fold's sources, else by :attr:`model`."""
        if folds is None or not self.fold_models:
            return predict(self.model, x)
        predicted = torch.empty(len(x), dtype=torch.long)
        for k, model in enumerate(self.fold_models):
            mask = folds == k
            if mask.any():
                predicted[mask] = predict(model, x[mask])
        return predicted


def class_weights(labels: Tensor, num_classes: int) -> Tensor:
    """Cross-entropy weights inversely proportional to each class's count (mean 1), so a class
    with few items (claps among snares) counts as much as a common one."""
    counts = torch.bincount(labels, minlength=num_classes).float().clamp(min=1)
    inverse = counts.sum() / counts
    return inverse / inverse.mean()


def fit_classifier(dataset: Dataset, spatial_rank: int, channels: int, num_classes: int, *, epochs: int = 8,
                   batch_size: int = 128, lr: float = 2e-3, width: int = 32, seed: int = 0,
                   augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
                   balanced: bool = False) -> Classifier:
    """A classifier fitted on every item of ``dataset``, in eval mode.

    Every batch is randomly shifted; ``augment`` (one item, a generator -> the item, e.g. the
    modality's training augmentations) also changes each item as another take of it would, and
    ``balanced`` weights the loss by :func:`class_weights` with label smoothing 0.1 (Szegedy et
    al. 2016): both make a judge hold up on recordings from sources it never heard.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = Classifier(spatial_rank, channels, num_classes, width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(loader))
    weights = class_weights(_labels(dataset), num_classes) if balanced else None
    smoothing = 0.1 if balanced else 0.0
    model.train()
    for _ in range(epochs):
        for batch in loader:
            x = batch["x"]
            if augment is not None:
                x = torch.stack([augment(item, generator) for item in x])
            x = random_shift(x, 2, generator)
            loss = F.cross_entropy(model(x), batch["label"], weight=weights, label_smoothing=smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return model.eval()


def _labels(dataset: Dataset) -> Tensor:
    if isinstance(dataset, TensorItems):
        return dataset.labels
    return torch.tensor([int(dataset[i]["label"]) for i in range(len(dataset))])


def train_classifier(dataset: Dataset, spatial_rank: int, channels: int, num_classes: int, *, epochs: int = 8,
                     batch_size: int = 128, lr: float = 2e-3, width: int = 32, seed: int = 0,
                     held_out: float = 0.15) -> Judge:
    """Fit a classifier on ``dataset`` less a random ``held_out`` part; return it with the
    held-out items and its accuracy on them."""
    generator = torch.Generator().manual_seed(seed)
    n_test = max(1, int(len(dataset) * held_out))
    train_set, test_set = random_split(dataset, [len(dataset) - n_test, n_test], generator=generator)
    model = fit_classifier(train_set, spatial_rank, channels, num_classes, epochs=epochs, batch_size=batch_size,
                           lr=lr, width=width, seed=seed)
    test = next(iter(DataLoader(test_set, batch_size=len(test_set))))
    return Judge(model, accuracy(model, test["x"], test["label"]), test["x"], test["label"])


def source_folds(sources: list[str], folds: int) -> Tensor:
    """A fold index per item such that all items of one source share a fold: sources, largest
    first, each go to the fold with the fewest items so far (deterministic)."""
    counts: dict[str, int] = {}
    for source in sources:
        counts[source] = counts.get(source, 0) + 1
    k = max(1, min(folds, len(counts)))
    sizes, fold_of = [0] * k, {}
    for source in sorted(counts, key=lambda s: (-counts[s], s)):
        smallest = min(range(k), key=lambda i: (sizes[i], i))
        fold_of[source] = smallest
        sizes[smallest] += counts[source]
    return torch.tensor([fold_of[s] for s in sources], dtype=torch.long)


def judge_by_source(x: Tensor, labels: Tensor, sources: list[str], spatial_rank: int, num_classes: int, *,
                    folds: int = 5, **fit: object) -> Judge:
    """Judges for real data held out by source (kit, recording, clip): one classifier per fold,
    trained on the other folds' sources, gives the held-out accuracy (every item judged by a
    classifier that never heard its source); the final classifier is trained on every item."""
    fold_of = source_folds(sources, folds)
    k = int(fold_of.max()) + 1
    if k < 2:
        raise ValueError(f"judging by source needs items from at least 2 sources, got {len(set(sources))}")
    fold_models = [fit_classifier(TensorItems(x[fold_of != i], labels[fold_of != i]), spatial_rank, x.shape[1],
                                  num_classes, **fit) for i in range(k)]
    final = fit_classifier(TensorItems(x, labels), spatial_rank, x.shape[1], num_classes, **fit)
    judge = Judge(final, 0.0, x, labels, fold_of, fold_models)
    judge.heldout_accuracy = float((judge.predict(x, fold_of) == labels).float().mean())
    return judge


@torch.no_grad()
def predict(model: Classifier, x: Tensor, batch_size: int = 256) -> Tensor:
    return torch.cat([model(chunk).argmax(-1) for chunk in x.split(batch_size)])


def accuracy(model: Classifier, x: Tensor, labels: Tensor) -> float:
    return float((predict(model, x) == labels).float().mean())


def per_class_accuracy(predicted: Tensor, labels: Tensor, num_classes: int) -> list[float]:
    return [float((predicted[labels == c] == c).float().mean()) if (labels == c).any() else float("nan")
            for c in range(num_classes)]


def accuracy_by_class(predicted: Tensor, labels: Tensor, classes: list[str]) -> dict[str, float | None]:
    """Accuracy per class name; None for a class with no item (JSON has no NaN)."""
    rates = per_class_accuracy(predicted, labels, len(classes))
    return {name: None if math.isnan(rate) else rate for name, rate in zip(classes, rates)}


def judge_per_class(judge: Judge, classes: list[str]) -> dict[str, float | None]:
    """The judge's accuracy on its held-out real items of each class (each item by the classifier
    that never saw its source); None for a class of which it holds none."""
    return accuracy_by_class(judge.predict(judge.heldout_x, judge.heldout_folds), judge.heldout_labels, classes)


@torch.no_grad()
def features(model: Classifier, x: Tensor, batch_size: int = 256) -> Tensor:
    """The classifier's pooled features of a batch, computed in chunks."""
    return torch.cat([model.features(chunk) for chunk in x.split(batch_size)])


def frechet_distance(real: Tensor, generated: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets ``[N, D]`` (Heusel et al.
    2017's FID formula, here in the evaluation classifier's feature space).

    ``tr sqrt(A B)`` is computed as the sum of the square roots of the eigenvalues of the
    symmetric ``A^1/2 B A^1/2`` (the same spectrum), which stays exact for the singular
    covariances of small sets and needs no scipy."""
    a, b = real.detach().cpu().double().numpy(), generated.detach().cpu().double().numpy()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    trace_root = np.sqrt(np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(min=0)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def mean_pairwise_distance(x: Tensor) -> float:
    """Mean Euclidean distance between the distinct rows of ``[N, D]`` (a diversity figure)."""
    if len(x) < 2:
        return 0.0
    distances = torch.cdist(x.double(), x.double())
    return float(distances.sum() / (len(x) * (len(x) - 1)))


def pearson(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise Pearson correlation of two ``[N, T]`` tensors (0 where a row is constant)."""
    a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    denominator = (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)
    return (a * b).sum(-1) / denominator


class TensorItems(Dataset):
    """A dataset of ``{"x", "label"}`` items over two tensors."""

    def __init__(self, x: Tensor, labels: Tensor) -> None:
        self.x, self.labels = x, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"x": self.x[i], "label": self.labels[i]}


def time_slices(x: Tensor, axis: int) -> Tensor:
    """``[B, C, *spatial]`` -> ``[B * steps, C, *other]``: every step of the batch's ``axis``
    (a tensor axis, e.g. 2 for the frames of ``[B, C, T, H, W]``) as an item of its own."""
    moved = x.movedim(axis, 1)
    return moved.reshape(-1, *moved.shape[2:])


def step_change(x: Tensor, axis: int) -> Tensor:
    """Mean absolute change between consecutive steps along ``axis``, per item ``[B]``: a
    temporal-consistency figure (0 for a still clip)."""
    return x.diff(dim=axis).abs().flatten(1).mean(1)
