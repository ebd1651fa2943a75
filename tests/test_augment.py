"""Augmentation as a core mechanism: the modality offers transforms, the config chooses them, the
training split (never validation) gets fresh variants each time an item is drawn."""

from __future__ import annotations

import pytest
import torch

from diffusionkit.errors import UsageError
from diffusionkit.training.augment import AugmentedDataset, Augmenter
from diffusionkit.training.datamodule import ModalityDataModule
from tests.toy_modality import GaussianClasses, ToyModality


class Shifting(ToyModality):
    """Offers ``plus`` (adds ``amount``) and ``negate``."""

    def augmentations(self):
        return {"plus": lambda x, generator, amount=1.0: x + amount, "negate": lambda x, generator: -x}


MODALITY = Shifting(1, (4,))


def test_all_applies_every_offered_transform_in_order():
    augment = Augmenter(MODALITY, "all", p=1.0)
    assert list(augment.chosen) == ["plus", "negate"]
    assert torch.equal(augment(torch.zeros(1, 4), torch.Generator()), torch.full((1, 4), -1.0))


def test_options_and_per_transform_p_override_the_defaults():
    augment = Augmenter(MODALITY, {"plus": {"amount": 3.0, "p": 1.0}, "negate": {"p": 0.0}}, p=0.5)
    assert augment.chosen == {"plus": {"p": 1.0, "amount": 3.0}, "negate": {"p": 0.0}}
    assert torch.equal(augment(torch.zeros(1, 4), torch.Generator()), torch.full((1, 4), 3.0))


def test_p_sets_how_often_a_transform_runs():
    augment = Augmenter(MODALITY, ["plus"], p=0.3)
    generator = torch.Generator().manual_seed(0)
    applied = sum(float(augment(torch.zeros(1, 4), generator)[0, 0]) for _ in range(2000)) / 2000
    assert 0.26 < applied < 0.34


@pytest.mark.parametrize("transforms", ["none", None, []])
def test_none_chooses_nothing(transforms):
    assert not Augmenter(MODALITY, transforms)


def test_an_unknown_transform_names_what_the_modality_offers():
    with pytest.raises(UsageError, match="augment.transforms: Shifting offers no transform 'flip'; it offers: plus, "
                                         "negate"):
        Augmenter(MODALITY, ["flip"])
    with pytest.raises(UsageError, match="augment.transforms: ToyModality offers no transform 'flip'; it offers: none"):
        Augmenter(ToyModality(1, (4,)), ["flip"])
    with pytest.raises(UsageError, match="augment.p must be between 0 and 1, got 1.5"):
        Augmenter(MODALITY, "all", p=1.5)


class _DrawnAnew(GaussianClasses):
    """Items whose "x" varies at each reading (a caption drawn anew, say), and as they are."""

    def __getitem__(self, index: int) -> dict:
        return {**super().__getitem__(index), "x": torch.randn(1, 4) + 100.0}

    def item_as_is(self, index: int) -> dict:
        return super().__getitem__(index)


def test_validation_reads_items_as_they_are_where_the_dataset_offers_it():
    data = _DrawnAnew((1, 4), n=20)
    module = ModalityDataModule(data, batch_size=4, val_fraction=0.25)
    assert len(module.val_set) == 5 and len(module.train_set) == 15
    first = [module.val_set[i]["x"] for i in range(5)]
    assert all(torch.equal(a, module.val_set[i]["x"]) for i, a in enumerate(first))  # the same at every pass
    assert all(float(x.max()) < 10 for x in first)  # as they are, not as drawn
    assert float(module.train_set[0]["x"].min()) > 50  # training still reads them drawn anew
    held_out = set(module.val_set.indices)
    assert held_out.isdisjoint(module.train_set.indices) and len(held_out) == 5


def test_only_training_items_are_augmented_and_each_draw_is_new():
    data = GaussianClasses((1, 4), n=20)
    augment = Augmenter(MODALITY, {"plus": {"amount": 100.0}}, p=0.5)
    module = ModalityDataModule(data, batch_size=4, val_fraction=0.25, augmenter=augment)
    assert isinstance(module.train_set, AugmentedDataset) and not isinstance(module.val_set, AugmentedDataset)
    assert all(float(module.val_set[i]["x"].max()) < 10 for i in range(len(module.val_set)))
    torch.manual_seed(0)
    draws = [float(module.train_set[0]["x"].max()) > 10 for _ in range(40)]
    assert 5 < sum(draws) < 35  # sometimes shifted, sometimes not: drawn anew each time
    assert module.train_set[0]["label"] == data[module.train_set.dataset.indices[0]]["label"]

