"""Factorised space-time layers for rank-3 inputs ``[B, C, T, H, W]``.

By convention the first of the three spatial axes of a rank-3 tensor is time. These layers
split the work of a full 3-D layer into a spatial part (within each frame) and a temporal
part (across frames at each position):

- :class:`FactorizedConv3d`: a 1x3x3 spatial convolution followed by a 3x1x1 temporal one,
  the "(2+1)D" convolution of Tran et al. 2018 ("A Closer Look at Spatiotemporal
  Convolutions for Action Recognition", R(2+1)D);
- :class:`SpaceTimeAttention`: self-attention over the ``H*W`` positions of each frame,
  then over the ``T`` frames of each position, as in the factorised space-time U-Net of
  Ho et al. 2022 ("Video Diffusion Models").

The U-Net picks them with ``UNet(..., factorized=True)`` (see ``diffusionkit.nets.unet.UNetLayers``).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffusionkit.nets.layers import norm, zero_module


def _check_rank3(x: Tensor, layer: str) -> None:
    if x.dim() != 5:
        raise ValueError(f"{layer} expects [B, C, T, H, W] inputs, got shape {list(x.shape)}")


class FactorizedConv3d(nn.Module):
    """A (2+1)-D convolution: 1x3x3 over (H, W), then 3x1x1 over T (R(2+1)D, Tran et al. 2018).

    Size-preserving, like a padded 3x3x3 ``Conv3d``, with ``9 * in_ch * out_ch + 3 * out_ch**2``
    weights instead of ``27 * in_ch * out_ch``. The two convolutions are composed without a
    nonlinearity in between (unlike R(2+1)D), so that the temporal convolution can be
    initialised to the identity (a Dirac kernel at the centre tap, zero bias): a fresh layer
    then equals the spatial convolution applied frame by frame, i.e. a block starts as the
    per-frame (image) model and learns its temporal mixing. ``zero_init`` zeroes the
    spatial convolution only, so a zero-initialised residual branch still gets gradients
    (zeroing both factors would leave both without gradient forever).
    """

    def __init__(self, in_ch: int, out_ch: int, zero_init: bool = False) -> None:
        super().__init__()
        self.spatial = nn.Conv3d(in_ch, out_ch, (1, 3, 3), padding=(0, 1, 1))
        self.temporal = nn.Conv3d(out_ch, out_ch, (3, 1, 1), padding=(1, 0, 0))
        with torch.no_grad():
            nn.init.dirac_(self.temporal.weight)
            nn.init.zeros_(self.temporal.bias)
        if zero_init:
            zero_module(self.spatial)

    def forward(self, x: Tensor) -> Tensor:
        _check_rank3(x, type(self).__name__)
        h = self.spatial(x)
        b, c, t, height, width = h.shape
        # ``self.temporal`` as a (3, 1) Conv2d over the [B, C, T, H*W] view: the same numbers,
        # several times faster than a 3x1x1 Conv3d on the CPU (measured with PyTorch 2.x).
        w = self.temporal.weight.flatten(-2)  # [C, C, 3, 1]
        out = F.conv2d(h.reshape(b, c, t, height * width), w, self.temporal.bias, padding=(1, 0))
        return out.reshape(b, c, t, height, width)


class AxisAttention(nn.Module):
    """Residual multi-head self-attention over one factor of ``[B, C, T, H, W]``.

    ``over="space"``: each frame's ``H*W`` positions attend to each other (``B*T`` sequences);
    ``over="time"``: each position's ``T`` frames attend to each other (``B*H*W`` sequences).
    GroupNorm statistics are taken over the whole clip; the output projection is
    zero-initialised so the layer starts as the identity (ADM). No positional encoding is
    added: the order of frames reaches temporal attention only through the convolutions.
    """

    def __init__(self, ch: int, num_heads: int, over: Literal["space", "time"]) -> None:
        super().__init__()
        if num_heads < 1 or ch % num_heads:
            raise ValueError(f"attention channels {ch} are not divisible by num_heads={num_heads}")
        if over not in ("space", "time"):
            raise ValueError(f"over must be 'space' or 'time', got {over!r}")
        self.num_heads = num_heads
        self.over = over
        self.norm = norm(ch)
        self.qkv = nn.Conv1d(ch, 3 * ch, 1)
        self.proj = zero_module(nn.Conv1d(ch, ch, 1))

    def forward(self, x: Tensor) -> Tensor:
        _check_rank3(x, type(self).__name__)
        b, c, t, h, w = x.shape
        heads, d, n = self.num_heads, c // self.num_heads, h * w
        qkv = self.qkv(self.norm(x).reshape(b, c, -1)).reshape(b, 3, heads, d, t, n)
        if self.over == "space":  # sequences of length n, one per (b, t)
            seq = qkv.permute(0, 4, 1, 2, 5, 3).reshape(b * t, 3, heads, n, d)
        else:  # sequences of length t, one per (b, position)
            seq = qkv.permute(0, 5, 1, 2, 4, 3).reshape(b * n, 3, heads, t, d)
        out = F.scaled_dot_product_attention(*seq.unbind(1))  # [sequences, heads, length, d]
        if self.over == "space":
            out = out.reshape(b, t, heads, n, d).permute(0, 2, 4, 1, 3)  # [b, heads, d, t, n]
        else:
            out = out.reshape(b, n, heads, t, d).permute(0, 2, 4, 3, 1)  # [b, heads, d, t, n]
        return x + self.proj(out.reshape(b, c, t * n)).reshape(x.shape)


class SpaceTimeAttention(nn.Module):
    """Spatial attention within each frame, then temporal attention across frames (Ho et al. 2022).

    Costs ``O(T * (H*W)**2 + H*W * T**2)`` instead of full 3-D attention's ``O((T*H*W)**2)``.
    Both parts are residual with zero-initialised outputs, so the layer starts as the identity.
    """

    def __init__(self, ch: int, num_heads: int) -> None:
        super().__init__()
        self.spatial = AxisAttention(ch, num_heads, over="space")
        self.temporal = AxisAttention(ch, num_heads, over="time")

    def forward(self, x: Tensor) -> Tensor:
        return self.temporal(self.spatial(x))
