"""A dataset's latents, encoded once to disk and reused: training then skips the encoder."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from diffusionkit.atomic import atomic_path
from diffusionkit.errors import UsageError
from diffusionkit.latent import LatentSpace
from diffusionkit.nets.text_conditioner import CAPTION


class LatentCache(Dataset):
    """Pre-encoded items ``{"z": latent, "label": int}`` (and ``"caption"`` where the source
    items had one) with the source dataset's classes."""

    def __init__(self, z: Tensor, labels: Tensor, classes: list[str], captions: list[str] | None = None) -> None:
        self.z, self.labels, self.classes, self.captions = z, labels, classes, captions

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        item = {"z": self.z[index], "label": self.labels[index]}
        if self.captions is not None:
            item[CAPTION] = self.captions[index]
        return item


@torch.no_grad()
def cached_latents(dataset: Dataset, latent: LatentSpace, path: str | Path, key: str,
                   batch_size: int = 64) -> LatentCache:
    """The latents of ``dataset`` from ``path``, encoding (and writing) them first if needed.

    ``key`` identifies the autoencoder and dataset the cache was made from; a file made from
    others is refused rather than silently used or overwritten.
    """
    path = Path(path).expanduser()
    classes = list(getattr(dataset, "classes", []))
    if path.is_file():
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        if metadata.get("key") != key:
            raise UsageError(f"latent cache '{path}' was made from another autoencoder or dataset; "
                             f"remove it or choose autoencoder.cache_path=<new file>")
        captions = json.loads(metadata["captions"]) if "captions" in metadata else None
        return LatentCache(tensors["z"], tensors["labels"], json.loads(metadata["classes"]), captions)
    latents, labels, captions = [], [], []
    for batch in DataLoader(dataset, batch_size=batch_size):
        latents.append(latent.encode(batch["x"]))
        labels.append(torch.as_tensor(batch["label"]))
        captions += list(batch.get(CAPTION, []))
    z, label_tensor = torch.cat(latents), torch.cat(labels)
    kept = captions if len(captions) == len(label_tensor) else None
    metadata = {"key": key, "classes": json.dumps(classes), **({"captions": json.dumps(kept)} if kept else {})}
    with atomic_path(path) as tmp:  # processes of one run may write it at once: each renames a whole file
        save_file({"z": z.contiguous(), "labels": label_tensor}, str(tmp), metadata=metadata)
    return LatentCache(z, label_tensor, classes, kept)
