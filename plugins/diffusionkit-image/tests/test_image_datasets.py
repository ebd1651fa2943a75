"""Built-in datasets: scikit-learn digits and generated shapes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from diffusionkit_image.datasets import DigitsDataset, ShapesDataset


def stack(dataset) -> tuple[torch.Tensor, list[int]]:
    """All items of ``dataset`` as one tensor and a list of labels."""
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([item["x"] for item in items]), [item["label"] for item in items]


# --- digits ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return stack(DigitsDataset())


def test_digits_has_all_1797_items_and_ten_classes(digits):
    """Digits are scikit-learn's 1797 scans, classes '0'..'9', every class present."""
    xs, labels = digits
    assert len(DigitsDataset()) == 1797
    assert DigitsDataset().classes == [str(d) for d in range(10)]
    assert xs.shape == (1797, 1, 32, 32)
    counts = Counter(labels)
    assert sorted(counts) == list(range(10))
    assert min(counts.values()) >= 170  # the set is near-balanced (174..183 per class)


def test_digits_span_the_model_range(digits):
    """Pixels lie in [-1, 1]; the blank background is exactly -1 and full ink reaches ~1."""
    xs, _ = digits
    assert xs.min() == -1.0
    assert xs.max() <= 1.0
    assert xs.max() > 0.99
    assert (xs[:, :, :, 0] == -1).float().mean() > 0.95  # the left edge is paper


@pytest.mark.parametrize(("size", "channels", "shape"),
                         [(32, 3, (3, 32, 32)), ([16, 24], 1, (1, 16, 24))])
def test_digits_size_and_channels(size, channels, shape):
    """size sets [H, W]; channels=3 repeats the grey plane identically."""
    item = DigitsDataset(size=size, channels=channels)[5]
    assert item["x"].shape == shape
    assert item["label"] == 5  # scikit-learn's digits start 0, 1, 2, ...
    assert all(torch.equal(plane, item["x"][0]) for plane in item["x"])


@pytest.mark.parametrize("cls", [DigitsDataset, ShapesDataset])
def test_datasets_reject_two_channels(cls):
    """Datasets accept only 1 or 3 channels."""
    with pytest.raises(ValueError, match="got 2"):
        cls(channels=2)


# --- shapes ---------------------------------------------------------------------------------


def test_shapes_same_index_is_deterministic():
    """The same (seed, index) gives an identical tensor, even from a fresh dataset."""
    assert torch.equal(ShapesDataset(20, seed=3)[7]["x"], ShapesDataset(20, seed=3)[7]["x"])


def test_shapes_differ_by_seed_and_index():
    """Different seeds (or indices) give clearly different images."""
    a, b = ShapesDataset(20, seed=0), ShapesDataset(20, seed=1)
    assert (a[7]["x"] - b[7]["x"]).abs().mean() > 0.1
    assert (a[3]["x"] - a[7]["x"]).abs().mean() > 0.1


def test_shapes_labels_are_balanced_and_images_in_range():
    """label = i % 4 over the classes circle/square/triangle/cross; x is [3, 32, 32] in [-1, 1]."""
    dataset = ShapesDataset(40, seed=0)
    xs, labels = stack(dataset)
    assert dataset.classes == ["circle", "square", "triangle", "cross"]
    assert labels == [i % 4 for i in range(40)]
    assert xs.shape == (40, 3, 32, 32)
    assert xs.min() >= -1.0 and xs.max() <= 1.0


def test_shapes_size_channels_and_indexing():
    """channels=1 and [H, W] shape the item; negative indices wrap; out of range is IndexError."""
    dataset = ShapesDataset(8, size=[16, 24], channels=1, seed=0)
    assert dataset[0]["x"].shape == (1, 16, 24)
    assert torch.equal(dataset[-1]["x"], dataset[7]["x"])
    with pytest.raises(IndexError, match="8"):
        dataset[8]


@pytest.mark.parametrize("kwargs", [{"num_samples": 0}, {"seed": -1}])
def test_shapes_rejects_bad_arguments(kwargs):
    """num_samples must be >= 1 and seed >= 0."""
    with pytest.raises(ValueError, match="ShapesDataset"):
        ShapesDataset(**kwargs)


def fill_ratio(x: torch.Tensor) -> float:
    """Foreground area over the area of its bounding box (background = the corner pixel)."""
    grey = x.mean(dim=0)
    distance = (grey - grey[0, 0]).abs()
    foreground = distance > distance.max() / 2
    rows, cols = torch.nonzero(foreground, as_tuple=True)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    return foreground.sum().item() / box.item()


def test_shapes_classes_have_distinct_geometry():
    """Classes differ in how much of their bounding box they fill.

    A circle fills pi/4 ~ 0.79 of its box at any rotation; a rotated square 0.5..1
    (mean ~0.64); a triangle at most 1/2; the cross with arm 0.25 under 0.45 (plus pixel
    fringes). Drawing every class the same would give the same ratios.
    """
    dataset = ShapesDataset(64, seed=0)
    ratios = {name: [] for name in dataset.classes}
    for i in range(len(dataset)):
        item = dataset[i]
        ratios[dataset.classes[item["label"]]].append(fill_ratio(item["x"]))
    mean = {name: float(np.mean(values)) for name, values in ratios.items()}
    assert min(ratios["circle"]) > 0.7
    assert 0.55 < mean["square"] < 0.75
    assert mean["triangle"] < 0.6
    assert mean["cross"] < 0.6
    assert mean["circle"] - max(mean[n] for n in ("square", "triangle", "cross")) > 0.1
