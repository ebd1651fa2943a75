"""A LightningDataModule over any Modality's dataset: seeded train/validation split."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from diffusionkit.errors import UsageError

from diffusionkit.training.augment import AugmentedDataset, Augmenter


class ModalityDataModule(pl.LightningDataModule):
    """Splits one map-style dataset (items ``{"x", "label"}``, attribute ``classes``).

    Args:
        dataset: the dataset, already built (e.g. by ``hydra.utils.instantiate``).
        batch_size: items per batch.
        num_workers: DataLoader worker processes (0 = load in the training process).
        val_fraction: share of the items held out for validation (0 = none).
        seed: seeds the split so every run holds out the same items.
        augmenter: transforms applied on the fly to training items (never to validation ones).

    A dataset whose items vary from one reading to the next (a caption drawn anew each time)
    may offer ``item_as_is(index)``, the item without that variation: validation reads it, so
    every validation pass measures the same items.
    """

    def __init__(self, dataset: Dataset, batch_size: int = 64, num_workers: int = 0,
                 val_fraction: float = 0.05, seed: int = 0, augmenter: Augmenter | None = None) -> None:
        super().__init__()
        if len(dataset) == 0:
            raise ValueError("the dataset is empty: nothing to train on")
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        n_val = int(round(len(dataset) * val_fraction)) if len(dataset) > 1 else 0
        if n_val >= len(dataset):
            raise UsageError(f"data.val_fraction={val_fraction} holds out all {len(dataset)} items, leaving none "
                             f"to train on; lower it")
        generator = torch.Generator().manual_seed(seed)
        # random_split's own order (the same permutation, cut at the same place), without its warning
        # about an empty validation part when there is nothing to hold out
        order = torch.randperm(len(dataset), generator=generator).tolist()
        cut = len(dataset) - n_val
        self.train_set, self.val_set = Subset(dataset, order[:cut]), Subset(dataset, order[cut:])
        if hasattr(dataset, "item_as_is"):
            self.val_set = ItemsAsIs(dataset, self.val_set.indices)
        if augmenter:
            self.train_set = AugmentedDataset(self.train_set, augmenter)

    @property
    def classes(self) -> list[str]:
        return list(getattr(self.dataset, "classes", []))

    def _loader(self, subset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            subset,
            batch_size=min(self.batch_size, len(subset)),
            shuffle=shuffle,
            drop_last=shuffle and len(subset) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, shuffle=False) if len(self.val_set) else []


class ItemsAsIs(Dataset):
    """The items ``indices`` of a dataset, read through its ``item_as_is`` (see :class:`ModalityDataModule`)."""

    def __init__(self, dataset: Dataset, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        return self.dataset.item_as_is(self.indices[index])
