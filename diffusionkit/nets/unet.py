"""The diffusion U-Net of Ho et al. 2020 (DDPM) with the ADM refinements of Dhariwal & Nichol 2021.

One code path builds 1-D, 2-D and 3-D networks from ``spatial_rank``. Conditioning: a time
step embedding plus an optional conditioning vector (class labels, scalars: see
:mod:`diffusionkit.nets.conditioners`), optional channels concatenated to the input, and an
optional context sequence attended to by cross-attention at the attention levels (Rombach et
al. 2022).
For rank 3 the first spatial axis is time (``[B, C, T, H, W]``), which the ``factorized`` and
``temporal_downsample`` options use (:class:`UNetLayers`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from diffusionkit.nets.conditioning import TimestepEmbedder
from diffusionkit.nets.layers import (CHANNELS_LAST, CrossAttention, Downsample, ResBlock, SelfAttention, Upsample,
                                     conv_nd, norm, zero_module)
from diffusionkit.nets.patching import fold_patches, patch_sizes, unfold_patches
from diffusionkit.nets.spacetime import FactorizedConv3d, SpaceTimeAttention


@dataclass(frozen=True)
class UNetLayers:
    """The one place that picks the U-Net's residual blocks, attention and resampling layers.

    Default: full ``Conv{rank}d`` blocks, self-attention over all positions, resampling by 2
    on every axis. The options apply to rank 3, whose first spatial axis is time
    (``[B, C, T, H, W]``), and raise a ``ValueError`` for other ranks:

    - ``factorized``: residual blocks use (2+1)-D convolutions (1x3x3 then 3x1x1,
      :class:`~diffusionkit.nets.spacetime.FactorizedConv3d`, Tran et al. 2018) and attention
      is spatial-then-temporal (:class:`~diffusionkit.nets.spacetime.SpaceTimeAttention`,
      Ho et al. 2022). The input, output and resampling convolutions stay 3x3x3.
    - ``temporal_downsample=False``: down/upsampling uses (1, 2, 2) strides/scale factors, so T
      keeps its size at every level (for short clips); it works with either kind of block.
    """

    rank: int
    factorized: bool = False
    temporal_downsample: bool = True

    def __post_init__(self) -> None:
        if self.rank != 3:
            for option, value, default in (("factorized", self.factorized, False),
                                           ("temporal_downsample", self.temporal_downsample, True)):
                if value != default:
                    raise ValueError(
                        f"{option}={value} applies only to spatial_rank 3 ([B, C, T, H, W] inputs), "
                        f"got spatial_rank {self.rank}"
                    )

    @property
    def axis_factors(self) -> tuple[int, ...]:
        """The down/upsampling factor of each spatial axis."""
        return (1, 2, 2) if self.rank == 3 and not self.temporal_downsample else (2,) * self.rank

    def res_block(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float) -> ResBlock:
        conv = FactorizedConv3d if self.factorized else None
        return ResBlock(self.rank, in_ch, out_ch, emb_dim, dropout, conv=conv)

    def attention(self, ch: int, num_heads: int, context_dim: int = 0) -> nn.Module:
        """Self-attention; with ``context_dim > 0`` a context's keys and values join it (GLIDE's
        form, which factorised attention does not have)."""
        if not self.factorized:
            return SelfAttention(ch, num_heads, context_dim)
        if context_dim:
            raise ValueError("context_attention=joint needs full attention; factorized=true attends across "
                             "space and time apart: use context_attention=cross")
        return SpaceTimeAttention(ch, num_heads)

    def downsample(self, ch: int) -> Downsample:
        return Downsample(self.rank, ch, self.axis_factors)

    def upsample(self, ch: int) -> Upsample:
        return Upsample(self.rank, ch, self.axis_factors)


class _EmbedSequential(nn.Sequential):
    """A sequence of layers that hands the conditioning embedding and the cross-attention
    context to those that take them."""

    def forward(self, x: Tensor, emb: Tensor, context: Tensor | None = None) -> Tensor:  # type: ignore[override]
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif getattr(layer, JOINT, None) is not None:
                x = layer(x, _required(context))
            else:
                x = layer(x)
            cross = getattr(layer, CROSS, None)
            if cross is not None:
                x = cross(x, _required(context))
        return x


def _required(context: Tensor | None) -> Tensor:
    """The context a layer attends to; one line when a net that needs one was given none."""
    if context is None:
        raise ValueError("this UNet attends to a context (context_dim > 0): pass context=[B, L, D]")
    return context


#: the name under which a self-attention layer carries the cross-attention that runs after it;
#: kept inside it so that the layers of a net without a context keep their names (a trained
#: model gains a prompt by ``train init=``: every weight it had loads where it was)
CROSS = "cross"
#: the name of a self-attention layer's projection of a context it attends to jointly
JOINT = "context_kv"
#: how attention blocks attend to a context: a cross-attention block after each (latent diffusion),
#: or the context's keys and values joined to the self-attention's own (GLIDE)
CONTEXT_ATTENTION = ("cross", "joint")


class UNet(nn.Module):
    """Noise-prediction U-Net over ``[B, C, *spatial]`` tensors of rank 1, 2 or 3.

    Level ``i`` of ``channel_mult`` runs at resolution ``1 / 2**i`` with
    ``model_channels * channel_mult[i]`` channels and ``num_res_blocks`` residual blocks,
    each followed by self-attention when ``i`` is in ``attention_levels``. The decoder
    concatenates the encoder's activations as skip connections (DDPM); the middle block is
    ResBlock-attention-ResBlock. The output convolution is zero-initialised.

    For ``spatial_rank=3`` inputs ``[B, C, T, H, W]`` (first spatial axis = time),
    ``factorized=True`` makes the blocks factorised space-time ones ((2+1)-D convolutions,
    spatial-then-temporal attention) and ``temporal_downsample=False`` keeps T at every level;
    see :class:`UNetLayers`. Both raise a ``ValueError`` for other ranks.

    ``vector [B, embedding_dim]`` is added to the time embedding; ``concat_channels`` channels are
    concatenated to the input; with ``context_dim > 0`` the attention blocks of
    ``cross_attention_levels`` (default: every attention level and the middle block; the middle
    block attends when the lowest level is listed) are followed by cross-attention to
    ``context [B, L, context_dim]``; ``context_attention="joint"`` instead joins the context's keys
    and values to those attention blocks' own (GLIDE, Nichol et al. 2022: one block, one softmax;
    full attention only). The conditioners of
    :mod:`diffusionkit.nets.conditioners` make these from class labels, sketches, text...

    ``patch_size`` (an int, or one per spatial axis) folds non-overlapping patches into channels
    before the first layer and back after the last (simple diffusion, Hoogeboom et al. 2023):
    ``(1, 2, 2)`` runs a video net on half-size frames with 4x the input channels.
    """

    def __init__(
        self,
        spatial_rank: int,
        in_channels: int,
        out_channels: int | None = None,
        model_channels: int = 64,
        channel_mult: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 2,
        attention_levels: Sequence[int] = (2,),
        num_heads: int = 4,
        concat_channels: int = 0,
        context_dim: int = 0,
        cross_attention_levels: Sequence[int] | None = None,
        context_attention: str = "cross",
        dropout: float = 0.0,
        factorized: bool = False,
        temporal_downsample: bool = True,
        patch_size: int | Sequence[int] = 1,
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if spatial_rank not in (1, 2, 3):
            raise ValueError(f"spatial_rank must be 1, 2 or 3, got {spatial_rank}")
        layers = UNetLayers(spatial_rank, factorized, temporal_downsample)
        self.patch = patch_sizes(patch_size, spatial_rank)
        folded = math.prod(self.patch)  # channels per input channel after patching
        if model_channels < 1:
            raise ValueError(f"model_channels must be at least 1, got {model_channels}")
        if not channel_mult:
            raise ValueError("channel_mult must name at least one level")
        bad = [i for i in attention_levels if not 0 <= i < len(channel_mult)]
        if bad:
            raise ValueError(f"attention_levels {bad} are not levels of channel_mult (0..{len(channel_mult) - 1})")
        lowest = len(channel_mult) - 1
        cross_levels = [*attention_levels, lowest] if cross_attention_levels is None else list(cross_attention_levels)
        bad = [i for i in cross_levels if i not in attention_levels and i != lowest]
        if bad:
            raise ValueError(f"cross_attention_levels {bad} have no attention block to follow (attention_levels "
                             f"{list(attention_levels)}, and {lowest}: the middle block)")
        if context_attention not in CONTEXT_ATTENTION:
            raise ValueError(f"unknown context_attention '{context_attention}'; choose one of {list(CONTEXT_ATTENTION)}")
        self.config = dict(
            spatial_rank=spatial_rank,
            in_channels=in_channels,
            out_channels=out_channels,
            model_channels=model_channels,
            channel_mult=list(channel_mult),
            num_res_blocks=num_res_blocks,
            attention_levels=list(attention_levels),
            num_heads=num_heads,
            concat_channels=concat_channels,
            context_dim=context_dim,
            cross_attention_levels=None if cross_attention_levels is None else cross_levels,
            context_attention=context_attention,
            dropout=dropout,
            factorized=factorized,
            temporal_downsample=temporal_downsample,
            patch_size=list(self.patch),
        )
        self.spatial_rank = spatial_rank
        self.in_channels = in_channels
        self.concat_channels = concat_channels
        self.context_dim = context_dim
        self.downsample_factor = 2 ** (len(channel_mult) - 1)
        # what each spatial size must be a multiple of (1 for T without temporal downsampling)
        levels = len(channel_mult) - 1
        self.downsample_factors = tuple(p * f**levels for p, f in zip(self.patch, layers.axis_factors))

        emb_dim = 4 * model_channels
        #: the width of the time embedding, which a conditioning vector is added to
        self.embedding_dim = emb_dim
        self.time_embed = TimestepEmbedder(model_channels, emb_dim)

        def attention(level: int, ch: int) -> list[nn.Module]:
            attends = context_dim > 0 and level in cross_levels
            if attends and context_attention == "joint":
                return [layers.attention(ch, num_heads, context_dim)]
            layer = layers.attention(ch, num_heads)
            if attends:
                layer.add_module(CROSS, CrossAttention(ch, context_dim, num_heads))
            return [layer]

        def block(level: int, in_ch: int, out_ch: int) -> _EmbedSequential:
            modules: list[nn.Module] = [layers.res_block(in_ch, out_ch, emb_dim, dropout)]
            if level in attention_levels:
                modules.extend(attention(level, out_ch))
            return _EmbedSequential(*modules)

        ch = model_channels
        self.input_conv = conv_nd(spatial_rank, (in_channels + concat_channels) * folded, ch, 3, padding=1)
        skip_channels = [ch]
        self.down = nn.ModuleList()
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                self.down.append(block(level, ch, mult * model_channels))
                ch = mult * model_channels
                skip_channels.append(ch)
            if level < len(channel_mult) - 1:
                self.down.append(_EmbedSequential(layers.downsample(ch)))
                skip_channels.append(ch)

        self.middle = _EmbedSequential(
            layers.res_block(ch, ch, emb_dim, dropout),
            *attention(lowest, ch),
            layers.res_block(ch, ch, emb_dim, dropout),
        )

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layer = block(level, ch + skip_channels.pop(), mult * model_channels)
                ch = mult * model_channels
                if level > 0 and i == num_res_blocks:
                    layer.append(layers.upsample(ch))
                self.up.append(layer)

        self.out = nn.Sequential(
            norm(ch), nn.SiLU(), zero_module(conv_nd(spatial_rank, ch, out_channels * folded, 3, padding=1))
        )

    def forward(self, x: Tensor, t: Tensor, vector: Tensor | None = None, concat: Tensor | None = None,
                context: Tensor | None = None) -> Tensor:
        """Predict from ``x [B, in_channels, *spatial]`` at time steps ``t [B]`` (int or float; a scalar is broadcast).

        ``vector [B, embedding_dim]`` is added to the time embedding; ``concat [B,
        concat_channels, *spatial]`` is required when the network was built with
        ``concat_channels > 0``, and ``context [B, L, context_dim]`` with ``context_dim > 0``.
        """
        self._check_input(x)
        if self.concat_channels > 0:
            x = torch.cat([x, self._check_concat(x, concat)], dim=1)
        elif concat is not None:
            raise ValueError("concat was given, but this UNet was built with concat_channels=0")
        batch = x.shape[0]
        emb = self.time_embed(self._broadcast(torch.as_tensor(t, device=x.device), batch, "time steps t"))
        if vector is not None:
            if vector.shape != emb.shape:
                raise ValueError(f"vector must be of shape {list(emb.shape)}, got {list(vector.shape)}")
            emb = emb + vector
        if context is not None and not self.context_dim:
            raise ValueError("context was given, but this UNet was built with context_dim=0")

        h = self.input_conv(fold_patches(x, self.patch)).contiguous(memory_format=self._activation_layout())
        skips = [h]
        for layer in self.down:
            h = layer(h, emb, context)
            skips.append(h)
        h = self.middle(h, emb, context)
        for layer in self.up:
            h = layer(torch.cat([h, skips.pop()], dim=1), emb, context)
        return unfold_patches(self.out(h), self.patch)

    def _activation_layout(self) -> torch.memory_format:
        """Channels-last when the convolution weights are stored so (``devices.to_channels_last``),
        else contiguous. A 1-channel input is both layouts at once, so the first convolution's
        output would come out contiguous and every later one convert it again (11% of a bf16
        sampling step at 64x64). The output convolution's weight (``model_channels`` inputs,
        3-wide) tells the layouts apart."""
        last = CHANNELS_LAST.get(self.spatial_rank)
        weight = self.out[-1].weight
        if last is not None and weight.is_contiguous(memory_format=last) and not weight.is_contiguous():
            return last
        return torch.contiguous_format

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != self.spatial_rank + 2:
            raise ValueError(
                f"expected input of shape [B, C, {self.spatial_rank} spatial dims], got shape {list(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.shape[1]} (shape {list(x.shape)})")
        for size, factor in zip(x.shape[2:], self.downsample_factors):
            if size % factor:
                raise ValueError(
                    f"spatial size {size} (input shape {list(x.shape)}) is not a multiple of "
                    f"{factor} = patch_size * 2**(len(channel_mult) - 1)"
                )

    def _check_concat(self, x: Tensor, concat: Tensor | None) -> Tensor:
        expected = [x.shape[0], self.concat_channels, *x.shape[2:]]
        if concat is None:
            raise ValueError(f"this UNet needs concat of shape {expected}, got None")
        if list(concat.shape) != expected:
            raise ValueError(f"expected concat of shape {expected}, got {list(concat.shape)}")
        return concat.to(x.dtype)

    @staticmethod
    def _broadcast(v: Tensor, batch: int, name: str) -> Tensor:
        if v.dim() == 0:
            return v.expand(batch)
        if v.shape != (batch,):
            raise ValueError(f"{name} must be a scalar or of shape [{batch}], got shape {list(v.shape)}")
        return v
