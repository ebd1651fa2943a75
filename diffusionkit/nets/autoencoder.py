"""The first-stage autoencoder of Latent Diffusion (Rombach et al. 2022, "High-Resolution
Image Synthesis with Latent Diffusion Models"), rank-generic.

An :class:`AutoencoderKL` maps ``[B, C, *spatial]`` to a diagonal Gaussian posterior over a
latent ``[B, latent_channels, *spatial / f]`` with ``f = 2 ** (len(channel_mult) - 1)``,
regularised towards N(0, I) by a KL term (Kingma & Welling 2014, "Auto-Encoding Variational
Bayes"). :class:`PatchDiscriminator` is the PatchGAN of Isola et al. 2017 ("Image-to-Image
Translation with Conditional Adversarial Networks") used for the optional adversarial loss.
One code path builds 1-D, 2-D and 3-D networks from ``spatial_rank``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from diffusionkit.nets.layers import Downsample, ResBlock, Upsample, conv_nd, norm


class DiagonalGaussian:
    """A diagonal Gaussian ``N(mean, exp(logvar))`` over latents (the VAE posterior, Kingma & Welling 2014).

    ``logvar`` is clamped to ``[-30, 20]`` for numerical safety, as in Rombach et al. 2022.
    """

    def __init__(self, mean: Tensor, logvar: Tensor) -> None:
        if mean.shape != logvar.shape:
            raise ValueError(f"mean and logvar shapes differ: {list(mean.shape)} vs {list(logvar.shape)}")
        self.mean = mean
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """A reparameterised draw ``mean + std * eps`` (differentiable in mean and logvar)."""
        gen_device = generator.device if generator is not None else self.mean.device
        eps = torch.randn(self.mean.shape, generator=generator, device=gen_device, dtype=self.mean.dtype)
        return self.mean + self.std * eps.to(self.mean.device)

    def mode(self) -> Tensor:
        """The most likely latent: the mean."""
        return self.mean

    def kl(self) -> Tensor:
        """``KL(q || N(0, I))`` per item, summed over all non-batch dims: shape ``[B]``."""
        kl = 0.5 * (self.mean.square() + self.logvar.exp() - 1.0 - self.logvar)
        return kl.flatten(1).sum(dim=1)


def _check_rank(spatial_rank: int) -> None:
    if spatial_rank not in (1, 2, 3):
        raise ValueError(f"spatial_rank must be 1, 2 or 3, got {spatial_rank}")


class Encoder(nn.Module):
    """``x [B, C, *spatial]`` -> ``[B, out_channels, *spatial / f]``.

    Level ``i`` runs ``num_res_blocks`` emb-free residual blocks with
    ``base_channels * channel_mult[i]`` channels, then halves the resolution (except the last);
    a middle pair of residual blocks and ``norm -> SiLU -> conv`` close it (Rombach et al. 2022).
    """

    def __init__(
        self,
        spatial_rank: int,
        in_channels: int,
        out_channels: int,
        base_channels: int,
        channel_mult: Sequence[int],
        num_res_blocks: int,
    ) -> None:
        super().__init__()
        _check_rank(spatial_rank)
        ch = base_channels * channel_mult[0]
        layers: list[nn.Module] = [conv_nd(spatial_rank, in_channels, ch, 3, padding=1)]
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers.append(ResBlock(spatial_rank, ch, base_channels * mult, emb_dim=0))
                ch = base_channels * mult
            if level < len(channel_mult) - 1:
                layers.append(Downsample(spatial_rank, ch))
        layers += [
            ResBlock(spatial_rank, ch, ch, emb_dim=0),
            ResBlock(spatial_rank, ch, ch, emb_dim=0),
            norm(ch),
            nn.SiLU(),
            conv_nd(spatial_rank, ch, out_channels, 3, padding=1),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class Decoder(nn.Module):
    """``z [B, latent_channels, *spatial / f]`` -> ``[B, out_channels, *spatial]``, mirroring :class:`Encoder`.

    Level ``i`` (deepest first) runs ``num_res_blocks + 1`` residual blocks, then doubles the
    resolution (except level 0). :attr:`conv_out` is the last layer (used by the adaptive
    adversarial weight of Esser et al. 2021).
    """

    def __init__(
        self,
        spatial_rank: int,
        latent_channels: int,
        out_channels: int,
        base_channels: int,
        channel_mult: Sequence[int],
        num_res_blocks: int,
    ) -> None:
        super().__init__()
        _check_rank(spatial_rank)
        ch = base_channels * channel_mult[-1]
        layers: list[nn.Module] = [
            conv_nd(spatial_rank, latent_channels, ch, 3, padding=1),
            ResBlock(spatial_rank, ch, ch, emb_dim=0),
            ResBlock(spatial_rank, ch, ch, emb_dim=0),
        ]
        for level, mult in reversed(list(enumerate(channel_mult))):
            for _ in range(num_res_blocks + 1):
                layers.append(ResBlock(spatial_rank, ch, base_channels * mult, emb_dim=0))
                ch = base_channels * mult
            if level > 0:
                layers.append(Upsample(spatial_rank, ch))
        layers += [norm(ch), nn.SiLU()]
        self.layers = nn.Sequential(*layers)
        self.conv_out = conv_nd(spatial_rank, ch, out_channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        return self.conv_out(self.layers(z))


class AutoencoderKL(nn.Module):
    """KL-regularised autoencoder with downsampling factor ``f = 2 ** (len(channel_mult) - 1)``
    (Rombach et al. 2022; the KL term of Kingma & Welling 2014).

    ``channel_mult`` ``(1, 2)`` gives f = 2, ``(1, 2, 2)`` f = 4, ``(1, 2, 2, 2)`` f = 8.
    """

    def __init__(
        self,
        spatial_rank: int,
        in_channels: int,
        latent_channels: int = 4,
        base_channels: int = 64,
        channel_mult: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 1,
    ) -> None:
        super().__init__()
        _check_rank(spatial_rank)
        if not channel_mult:
            raise ValueError("channel_mult must name at least one level")
        if min(in_channels, latent_channels, base_channels, num_res_blocks) < 1 or min(channel_mult) < 1:
            raise ValueError(
                "in_channels, latent_channels, base_channels, num_res_blocks and channel_mult must be >= 1"
            )
        self.config = dict(
            spatial_rank=spatial_rank,
            in_channels=in_channels,
            latent_channels=latent_channels,
            base_channels=base_channels,
            channel_mult=list(channel_mult),
            num_res_blocks=num_res_blocks,
        )
        self.spatial_rank = spatial_rank
        self.in_channels = in_channels
        self.latent_channels = latent_channels
        self.downsampling_factor = 2 ** (len(channel_mult) - 1)
        args = (base_channels, channel_mult, num_res_blocks)
        self.encoder = Encoder(spatial_rank, in_channels, 2 * latent_channels, *args)
        self.decoder = Decoder(spatial_rank, latent_channels, in_channels, *args)

    def latent_shape(self, data_shape: Sequence[int]) -> tuple[int, ...]:
        """``(C, *spatial)`` -> ``(latent_channels, *spatial / f)``; ValueError if it does not fit."""
        data_shape = tuple(int(s) for s in data_shape)
        if len(data_shape) != self.spatial_rank + 1:
            raise ValueError(
                f"data shape {list(data_shape)} is not (channels, {self.spatial_rank} spatial sizes)"
            )
        if data_shape[0] != self.in_channels:
            raise ValueError(f"data shape {list(data_shape)} has {data_shape[0]} channels, expected {self.in_channels}")
        f = self.downsampling_factor
        bad = [s for s in data_shape[1:] if s % f]
        if bad:
            raise ValueError(
                f"spatial size {bad[0]} of data shape {list(data_shape)} is not divisible by the "
                f"autoencoder's downsampling factor {f}"
            )
        return (self.latent_channels, *(s // f for s in data_shape[1:]))

    def encode(self, x: Tensor) -> DiagonalGaussian:
        """The posterior ``q(z | x)`` over latents ``[B, latent_channels, *spatial / f]``."""
        if x.dim() != self.spatial_rank + 2:
            raise ValueError(f"expected input of shape [B, C, {self.spatial_rank} spatial dims], got {list(x.shape)}")
        self.latent_shape(x.shape[1:])
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``[B, latent_channels, *s]`` -> reconstructions ``[B, in_channels, *s * f]``."""
        if z.dim() != self.spatial_rank + 2 or z.shape[1] != self.latent_channels:
            raise ValueError(
                f"expected latents of shape [B, {self.latent_channels}, {self.spatial_rank} spatial dims], "
                f"got {list(z.shape)}"
            )
        return self.decoder(z)

    def forward(
        self, x: Tensor, sample_posterior: bool = True, generator: torch.Generator | None = None
    ) -> tuple[Tensor, DiagonalGaussian]:
        """Encode, draw (or take the mode of) a latent, decode: ``(x_hat, posterior)``."""
        posterior = self.encode(x)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(z), posterior

    @property
    def last_layer(self) -> Tensor:
        """The weight of the decoder's output convolution."""
        return self.decoder.conv_out.weight


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (Isola et al. 2017): one real/fake logit per overlapping patch.

    ``num_layers`` stride-2 4-wide convolutions (width doubling up to ``8 * width``), then two
    stride-1 4-wide convolutions, LeakyReLU(0.2) and group norm between. An input of spatial
    size ``s`` gives logits of size ``s // 2**num_layers - 2``, so every size must be at least
    ``3 * 2**num_layers``.
    """

    def __init__(self, spatial_rank: int, in_channels: int, width: int = 64, num_layers: int = 3) -> None:
        super().__init__()
        _check_rank(spatial_rank)
        if num_layers < 1 or width < 1:
            raise ValueError("num_layers and width must be >= 1")
        self.spatial_rank = spatial_rank
        self.num_layers = num_layers
        layers: list[nn.Module] = []
        ch_in, ch = in_channels, width
        for i in range(num_layers + 1):
            stride = 2 if i < num_layers else 1
            layers.append(conv_nd(spatial_rank, ch_in, ch, 4, stride=stride, padding=1))
            if i > 0:
                layers.append(norm(ch))
            layers.append(nn.LeakyReLU(0.2))
            ch_in, ch = ch, width * min(2 ** (i + 1), 8)
        layers.append(conv_nd(spatial_rank, ch_in, 1, 4, stride=1, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, C, *spatial]`` -> logits ``[B, 1, *(s // 2**num_layers - 2)]``."""
        if x.dim() != self.spatial_rank + 2:
            raise ValueError(f"expected input of shape [B, C, {self.spatial_rank} spatial dims], got {list(x.shape)}")
        smallest = 3 * 2**self.num_layers
        if min(x.shape[2:]) < smallest:
            raise ValueError(
                f"input shape {list(x.shape)} is too small for a {self.num_layers}-layer PatchDiscriminator: "
                f"every spatial size must be >= {smallest}"
            )
        return self.layers(x)
