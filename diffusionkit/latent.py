"""The frozen, scaled latent space a latent diffusion model lives in (Rombach et al. 2022).

A trained :class:`~diffusionkit.nets.autoencoder.AutoencoderKL` is frozen, and its latents are
multiplied by ``scale_factor`` = 1 / std of the latents over training data (LDM's
``scale_by_std``), so the diffusion model sees roughly unit-variance inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from diffusionkit.nets.autoencoder import AutoencoderKL


class LatentSpace(nn.Module):
    """A frozen autoencoder plus a scale: ``encode(x) = scale * z``, ``decode(z) = D(z / scale)``.

    The autoencoder's parameters never require grad and it stays in eval mode even when a
    parent module calls ``.train()``. Gradients can still flow through it to its inputs
    (e.g. for guidance through the decoder).
    """

    scale_factor: Tensor

    def __init__(self, autoencoder: AutoencoderKL, scale_factor: float = 1.0) -> None:
        super().__init__()
        if not scale_factor > 0:
            raise ValueError(f"scale_factor must be > 0, got {scale_factor}")
        self.autoencoder = autoencoder
        self.register_buffer("scale_factor", torch.tensor(float(scale_factor)))
        self.autoencoder.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> LatentSpace:
        """Stay in eval mode whatever ``mode`` asks: the autoencoder is frozen."""
        return super().train(False)

    def encode(self, x: Tensor, generator: torch.Generator | None = None, sample: bool = False) -> Tensor:
        """Data ``[B, C, *spatial]`` -> scaled latents; the posterior mode unless ``sample``."""
        posterior = self.autoencoder.encode(x)
        z = posterior.sample(generator) if sample else posterior.mode()
        return z * self.scale_factor.to(z.dtype)

    def decode(self, z: Tensor) -> Tensor:
        """Scaled latents -> data: ``autoencoder.decode(z / scale_factor)``."""
        return self.autoencoder.decode(z / self.scale_factor.to(z.dtype))

    def latent_shape(self, data_shape: Sequence[int]) -> tuple[int, ...]:
        """``(C, *spatial)`` -> ``(latent_channels, *spatial / f)``."""
        return self.autoencoder.latent_shape(data_shape)


@torch.no_grad()
def estimate_scale_factor(
    autoencoder: AutoencoderKL, batches: Iterable[Tensor | Mapping[str, Tensor]], max_batches: int = 8
) -> float:
    """``1 / std`` of the posterior-mode latents over the first ``max_batches`` batches
    (``scale_by_std`` of Rombach et al. 2022). A batch is a tensor or a dict with key ``"x"``."""
    if max_batches < 1:
        raise ValueError(f"max_batches must be >= 1, got {max_batches}")
    was_training = autoencoder.training
    autoencoder.eval()
    device = next(autoencoder.parameters()).device
    count, total, total_sq = 0, 0.0, 0.0
    try:
        for i, batch in enumerate(batches):
            if i >= max_batches:
                break
            x = batch["x"] if isinstance(batch, Mapping) else batch
            z = autoencoder.encode(x.to(device)).mode().double()
            count += z.numel()
            total += z.sum().item()
            total_sq += z.square().sum().item()
    finally:
        autoencoder.train(was_training)
    if count < 2:
        raise ValueError("estimate_scale_factor needs at least one non-empty batch")
    var = (total_sq - total * total / count) / (count - 1)
    if not var > 0:
        raise ValueError("the encoded latents have zero variance; cannot estimate a scale factor")
    return float(var**-0.5)
