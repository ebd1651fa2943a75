"""Rank-generic building blocks for diffusion U-Nets.

Residual blocks follow Ho et al. 2020 (DDPM); the scale-shift ("adaptive group norm")
conditioning, zero-initialised residual branches and multi-head self-attention follow
Dhariwal & Nichol 2021 ("Diffusion Models Beat GANs on Image Synthesis", ADM).
Every layer works for 1-D, 2-D and 3-D inputs ``[B, C, *spatial]``; for rank 3 the first
spatial axis is time by convention (``[B, C, T, H, W]``, see ``diffusionkit.nets.spacetime``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffusionkit.nets.step_cache import once_per_run

_CONVS: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
#: the channels-last memory format of a convolution weight or activation, by spatial rank (1-D has none)
CHANNELS_LAST: dict[int, torch.memory_format] = {2: torch.channels_last, 3: torch.channels_last_3d}


#: head widths up to which CPU bf16 attention that will be differentiated runs in float32 (see :func:`attention`)
FLOAT32_BACKWARD_HEAD_DIM = 32


def attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """``scaled_dot_product_attention`` over ``[B, heads, N, head_dim]``; CPU bf16 attention that
    a backward pass will follow, at head widths up to :data:`FLOAT32_BACKWARD_HEAD_DIM`, computes
    in float32: there PyTorch's fused CPU kernel runs its bf16 backward 1.5-10x slower than its
    float32 one (batch 64, 4 heads of 16: 87 vs 32 ms over 256 positions, 55 vs 6 ms from 256
    queries to 32 text tokens; heads of 32: 77 vs 50 ms; heads of 64: bf16 as fast or faster).
    Its bf16 forward is as fast as float32's, so sampling stays bf16."""
    if q.dtype == torch.bfloat16 and q.device.type == "cpu" and q.shape[-1] <= FLOAT32_BACKWARD_HEAD_DIM and \
            torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float()).to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v)


def keys_values(projection: nn.Module, tokens: Tensor, num_heads: int) -> tuple[Tensor, Tensor]:
    """Keys and values ``[B, heads, L, head_dim]`` of ``tokens [B, L, *]`` through one
    ``projection`` to ``2 * width`` (keys, then values)."""
    b, length, _ = tokens.shape
    k, v = projection(tokens).chunk(2, dim=-1)
    return k.reshape(b, length, num_heads, -1).transpose(1, 2), v.reshape(b, length, num_heads, -1).transpose(1, 2)


def context_keys_values(owner: nn.Module, projection: nn.Module, context: Tensor, dtype: torch.dtype,
                        num_heads: int) -> tuple[Tensor, Tensor]:
    """:func:`keys_values` of a context sequence in ``dtype``; the same at every step of a sampling
    run, so computed once per run (:mod:`diffusionkit.nets.step_cache`)."""
    return once_per_run(owner, (context,), lambda: keys_values(projection, context.to(dtype), num_heads), dtype)


def conv_nd(rank: int, in_ch: int, out_ch: int, kernel_size: int, **kw: Any) -> nn.Module:
    """A ``Conv{rank}d``; the one place where the spatial rank picks a layer type."""
    if rank not in _CONVS:
        raise ValueError(f"spatial rank must be 1, 2 or 3, got {rank}")
    return _CONVS[rank](in_ch, out_ch, kernel_size, **kw)


def conv3(rank: int, in_ch: int, out_ch: int, zero_init: bool = False) -> nn.Module:
    """A 3-wide, size-preserving ``Conv{rank}d``, all parameters zeroed when ``zero_init``.

    The default ``conv`` of :class:`ResBlock`; any callable with this signature (after ``rank``)
    can replace it, e.g. ``diffusionkit.nets.spacetime.FactorizedConv3d``.
    """
    conv = conv_nd(rank, in_ch, out_ch, 3, padding=1)
    return zero_module(conv) if zero_init else conv


class _ContiguousCopy(torch.autograd.Function):
    """``x.contiguous()`` whose gradient goes back in ``layout``, the layout ``x`` came in: where
    ``x`` also feeds a residual add or a skip convolution, autograd then sums two gradients of
    one layout (a mixed-layout sum is a strided copy, 5-10x slower)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, layout: torch.memory_format) -> Tensor:
        ctx.layout = layout
        return x.contiguous()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad.contiguous(memory_format=ctx.layout), None


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` (same weights) that sidesteps PyTorch's slow CPU kernels for channels-last
    activations: normalising a contiguous copy and handing the result back channels-last is
    faster wherever a gradient is taken (the channels-last backward is 1.2-5x slower than the
    copies), and without one on maps of at most :attr:`SMALL` positions (there the channels-last
    forward costs ~1 ms per call whatever the channels, 10-15x the contiguous kernel at 16x16).
    Measured in ``bench_vs_diffusers.py``'s training and sampling."""

    SMALL = 256

    def forward(self, x: Tensor) -> Tensor:
        layout = CHANNELS_LAST.get(x.dim() - 2)
        if (x.device.type != "cpu" or layout is None or x.is_contiguous()
                or not x.is_contiguous(memory_format=layout)):
            return super().forward(x)
        differentiated = torch.is_grad_enabled() and (x.requires_grad or (self.weight is not None and self.weight.requires_grad))
        if not differentiated and x[0, 0].numel() > self.SMALL:
            return super().forward(x)
        return super().forward(_ContiguousCopy.apply(x, layout)).contiguous(memory_format=layout)


def norm(ch: int, max_groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= ``max_groups`` that divides ``ch``."""
    groups = next(g for g in range(min(max_groups, ch), 0, -1) if ch % g == 0)
    return GroupNorm(groups, ch)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a module's parameters in place (a residual branch then starts as the identity)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


Factor = int | tuple[int, ...]


class Downsample(nn.Module):
    """Divide the spatial sizes by ``factor`` (default 2 on every axis) with a strided 3-wide convolution.

    ``factor`` may be a per-axis tuple, e.g. ``(1, 2, 2)`` to keep the time axis of ``[B, C, T, H, W]``.
    """

    def __init__(self, rank: int, ch: int, factor: Factor = 2) -> None:
        super().__init__()
        self.conv = conv_nd(rank, ch, ch, 3, stride=factor, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Multiply the spatial sizes by ``factor`` (default 2 on every axis): nearest-neighbour, then a 3-wide conv.

    ``factor`` may be a per-axis tuple, e.g. ``(1, 2, 2)`` to keep the time axis of ``[B, C, T, H, W]``.
    """

    def __init__(self, rank: int, ch: int, factor: Factor = 2) -> None:
        super().__init__()
        self.scale_factor = float(factor) if isinstance(factor, int) else tuple(float(f) for f in factor)
        self.conv = conv_nd(rank, ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=self.scale_factor, mode="nearest"))


class ResBlock(nn.Module):
    """Residual block conditioned on an embedding by scale-shift norm (ADM).

    ``h = conv(SiLU(norm(x)))``; ``h = conv0(dropout(SiLU(norm(h) * (1 + scale) + shift)))``
    with ``(scale, shift) = Linear(SiLU(emb))`` and ``conv0`` zero-initialised;
    output ``skip(x) + h`` where ``skip`` is a 1-wide conv when the channel count changes.
    With ``emb_dim=0`` the block takes no embedding (a plain pre-activation residual block,
    as in the autoencoders of Rombach et al. 2022) and ``forward`` is called without one.
    ``conv(in_ch, out_ch, zero_init=...)`` builds the two 3-wide convolutions (default: full
    ``Conv{rank}d``, :func:`conv3`); ``FactorizedConv3d`` makes this an R(2+1)D block.
    """

    def __init__(
        self,
        rank: int,
        in_ch: int,
        out_ch: int,
        emb_dim: int,
        dropout: float = 0.0,
        conv: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.rank = rank
        conv = partial(conv3, rank) if conv is None else conv
        self.in_layers = nn.Sequential(norm(in_ch), nn.SiLU(), conv(in_ch, out_ch))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * out_ch)) if emb_dim > 0 else None
        self.out_norm = norm(out_ch)
        self.out_layers = nn.Sequential(nn.SiLU(), nn.Dropout(dropout), conv(out_ch, out_ch, zero_init=True))
        self.skip = nn.Identity() if in_ch == out_ch else conv_nd(rank, in_ch, out_ch, 1)

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        """``x``: ``[B, in_ch, *spatial]``; ``emb``: ``[B, emb_dim]``, or None when ``emb_dim=0``."""
        h = self.in_layers(x)
        if self.emb_layers is None:
            if emb is not None:
                raise ValueError("this ResBlock was built with emb_dim=0 and takes no embedding")
            return self.skip(x) + self.out_layers(self.out_norm(h))
        if emb is None:
            raise ValueError("this ResBlock needs an embedding of shape [B, emb_dim]")
        scale, shift = self.emb_layers(emb).reshape(emb.shape[0], -1, *(1,) * self.rank).chunk(2, dim=1)
        h = self.out_layers(torch.addcmul(shift, self.out_norm(h), 1 + scale))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over all spatial positions, residual (ADM).

    Positions of any rank are flattened to a sequence; the output projection is
    zero-initialised so the block starts as the identity. With ``context_dim > 0`` the keys and
    values of a context sequence ``[B, L, context_dim]`` join the positions' own, so every
    position attends to both in one softmax (GLIDE, Nichol et al. 2022): text conditioning
    without a separate cross-attention block.
    """

    def __init__(self, ch: int, num_heads: int, context_dim: int = 0) -> None:
        super().__init__()
        if num_heads < 1 or ch % num_heads:
            raise ValueError(f"attention channels {ch} are not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.norm = norm(ch)
        self.qkv = nn.Conv1d(ch, 3 * ch, 1)
        self.proj = zero_module(nn.Conv1d(ch, ch, 1))
        self.context_kv = nn.Linear(context_dim, 2 * ch, bias=False) if context_dim > 0 else None

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        b, c, *spatial = x.shape
        tokens = self.norm(x).reshape(b, c, -1).transpose(1, 2)  # [B, N, C]
        # the 1-wide convolutions' weights applied token-wise: q, k and v come out with their
        # channels contiguous, which SDPA's fused (flash) CPU kernel needs; strided heads send it
        # to the math fallback, 2x slower and in float32 under bf16 autocast
        qkv = F.linear(tokens, self.qkv.weight.squeeze(-1), self.qkv.bias)  # [B, N, 3C]
        q, k, v = qkv.reshape(b, -1, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        if self.context_kv is not None:
            if context is None:
                raise ValueError("this attention block attends to a context (context_dim > 0): pass context=[B, L, D]")
            k_context, v_context = context_keys_values(self, self.context_kv, context, q.dtype, self.num_heads)
            k, v = torch.cat([k, k_context], dim=2), torch.cat([v, v_context], dim=2)
        h = attention(q, k, v).transpose(1, 2).reshape(b, -1, c)  # [B, N, C]
        h = F.linear(h, self.proj.weight.squeeze(-1), self.proj.bias)
        return x + h.transpose(1, 2).reshape(b, c, *spatial)


class CrossAttention(nn.Module):
    """Multi-head attention from every spatial position to a context sequence ``[B, L,
    context_dim]``, residual, as in the transformer blocks of latent diffusion (Rombach et al.
    2022): queries from the normalised features, keys and values from the context. The output
    projection is zero-initialised so the block starts as the identity."""

    def __init__(self, ch: int, context_dim: int, num_heads: int) -> None:
        super().__init__()
        if num_heads < 1 or ch % num_heads:
            raise ValueError(f"attention channels {ch} are not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.norm = norm(ch)
        self.q = nn.Linear(ch, ch, bias=False)
        self.kv = nn.Linear(context_dim, 2 * ch, bias=False)
        self.proj = zero_module(nn.Linear(ch, ch))

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        b, c, *spatial = x.shape
        heads = self.num_heads
        q = self.q(self.norm(x).reshape(b, c, -1).transpose(1, 2))  # [B, N, C]
        k, v = context_keys_values(self, self.kv, context, q.dtype, heads)
        q = q.reshape(b, -1, heads, c // heads).transpose(1, 2)
        h = attention(q, k, v).transpose(1, 2).reshape(b, -1, c)  # [B, N, C]
        return x + self.proj(h).transpose(1, 2).reshape(b, c, *spatial)
