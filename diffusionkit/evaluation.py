"""Judging generated samples with a classifier trained on the real data of the same dataset.

This is the "classification accuracy score" idea (Ravuri & Vinyals 2019) turned around:
a small rank-generic CNN learns the real classes; generated samples are scored by how often
it recognises the class they were conditioned on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, random_split

from diffusionkit.nets.layers import conv_nd, norm


class Classifier(nn.Module):
    """Three strided conv stages and a linear head; works for any spatial rank."""

    def __init__(self, spatial_rank: int, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        widths = [width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        ch = in_channels
        for out in widths:
            layers += [conv_nd(spatial_rank, ch, out, 3, padding=1), norm(out), nn.SiLU(),
                       conv_nd(spatial_rank, out, out, 3, stride=2, padding=1), norm(out), nn.SiLU()]
            ch = out
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(ch, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Pooled features ``[B, 4 * width]`` (also usable for Frechet distances)."""
        return self.body(x).flatten(2).mean(-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Roll every spatial axis by a random offset in [-max_shift, max_shift] (one per batch)."""
    for dim in range(2, x.ndim):
        shift = int(torch.randint(-max_shift, max_shift + 1, (1,), generator=generator))
        x = torch.roll(x, shift, dims=dim)
    return x


@dataclass
class Judge:
    """A classifier trained on real data, with the real items it never saw."""

    model: Classifier
    heldout_accuracy: float
    heldout_x: Tensor
    heldout_labels: Tensor


def train_classifier(dataset: Dataset, spatial_rank: int, channels: int, num_classes: int, *, epochs: int = 8,
                     batch_size: int = 128, lr: float = 2e-3, width: int = 32, seed: int = 0,
                     held_out: float = 0.15) -> Judge:
    """Fit a classifier on ``dataset``; return it (eval mode) with its held-out items and accuracy."""
    generator = torch.Generator().manual_seed(seed)
    n_test = max(1, int(len(dataset) * held_out))
    train_set, test_set = random_split(dataset, [len(dataset) - n_test, n_test], generator=generator)
    torch.manual_seed(seed)
    model = Classifier(spatial_rank, channels, num_classes, width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(loader))
    model.train()
    for _ in range(epochs):
        for batch in loader:
            x = random_shift(batch["x"], 2, generator)
            loss = F.cross_entropy(model(x), batch["label"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()
    test = next(iter(DataLoader(test_set, batch_size=len(test_set))))
    return Judge(model, accuracy(model, test["x"], test["label"]), test["x"], test["label"])


@torch.no_grad()
def predict(model: Classifier, x: Tensor, batch_size: int = 256) -> Tensor:
    return torch.cat([model(chunk).argmax(-1) for chunk in x.split(batch_size)])


def accuracy(model: Classifier, x: Tensor, labels: Tensor) -> float:
    return float((predict(model, x) == labels).float().mean())


def per_class_accuracy(predicted: Tensor, labels: Tensor, num_classes: int) -> list[float]:
    return [float((predicted[labels == c] == c).float().mean()) if (labels == c).any() else float("nan")
            for c in range(num_classes)]


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
