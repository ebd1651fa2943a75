"""The Diffusion Transformer (DiT) of Peebles & Xie 2023 ("Scalable Diffusion Models with
Transformers"), for sequences, images and space-time video from one code path.

The input ``[B, C, *spatial]`` of any spatial rank is cut into non-overlapping patches (a size
per axis: ``(1, 2, 2)`` keeps every frame of a clip and halves H and W, the space-time patches of
Sora), each patch becomes a token with an N-d position embedding, and a stack of transformer
blocks denoises the tokens. Each block is conditioned by adaLN-Zero: the time embedding plus the
conditioners' vector regress a shift, scale and gate for the attention and MLP branches, the
gates starting at zero so every block starts as the identity. Sequence conditions (a text
prompt's tokens) are read by cross-attention in every block. For rank 3, ``factorized=True``
splits each block's self-attention into attention within a frame then across frames (as in the
factorised space-time attention of Ho et al. 2022, "Video Diffusion Models"; Bertasius et al.
2021's "divided" attention). All attention goes through ``scaled_dot_product_attention``.

Two options come from U-ViT (Bao et al. 2023, "All are Worth Words: A ViT Backbone for Diffusion
Models"): ``long_skips`` joins the outputs of the first ``(depth - 1) // 2`` blocks to the inputs
of the last as many (a linear layer over the two, as a U-Net's skips), and ``final_conv`` puts a 3-wide convolution
(3x3x3 for video: across frames too) after the patches are laid back out; here it is residual and
zero-initialised, so a fresh net still predicts 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffusionkit.nets.conditioning import TimestepEmbedder
from diffusionkit.nets.layers import attention, context_keys_values, conv_nd, keys_values
from diffusionkit.nets.patching import fold_patches, patch_sizes, unfold_patches

POSITIONS = ("sincos", "learned")


def sincos_positions(grid: Sequence[int], dim: int, device: torch.device | None = None) -> Tensor:
    """Fixed N-d sine-cosine position embeddings ``[prod(grid), dim]`` (Vaswani et al. 2017, one
    band of ``dim // len(grid)`` features per axis as in MAE/DiT's 2-D version; leftover features
    are zero). Tokens are in row-major order of ``grid``."""
    rank = len(grid)
    per_axis = 2 * (dim // (2 * rank))
    if per_axis == 0:
        raise ValueError(f"hidden_size {dim} is too small for sine-cosine positions on {rank} axes")
    half = per_axis // 2
    freqs = 1.0 / 10000 ** (torch.arange(half, dtype=torch.float32, device=device) / half)
    coords = torch.meshgrid(*(torch.arange(n, dtype=torch.float32, device=device) for n in grid), indexing="ij")
    bands = []
    for axis in coords:
        angles = axis.reshape(-1, 1) * freqs
        bands += [torch.sin(angles), torch.cos(angles)]
    emb = torch.cat(bands, dim=1)
    return F.pad(emb, (0, dim - emb.shape[1]))


class LearnedPositions(nn.Module):
    """Learned N-d position embeddings: one table per axis (``max_len`` entries each), a token's
    embedding the sum of its coordinates' entries, so any grid up to ``max_len`` per axis works."""

    def __init__(self, rank: int, dim: int, max_len: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.tables = nn.ParameterList(nn.Parameter(torch.randn(max_len, dim) * 0.02) for _ in range(rank))

    def forward(self, grid: Sequence[int]) -> Tensor:
        if max(grid) > self.max_len:
            raise ValueError(f"a patch grid of {list(grid)} exceeds the learned positions' max_len={self.max_len}; "
                             f"build the net with a larger max_len or a larger patch_size")
        emb = 0
        for axis, (n, table) in enumerate(zip(grid, self.tables)):
            shape = [1] * len(grid)
            shape[axis] = n
            emb = emb + table[:n].reshape(*shape, -1)
        return emb.reshape(-1, emb.shape[-1])


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN: ``x * (1 + scale) + shift`` with per-sample ``shift, scale [B, D]`` over tokens ``[B, N, D]``."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class Attention(nn.Module):
    """Multi-head attention of tokens ``[B, N, D]`` to ``context [B, L, context_dim]`` (itself when
    none is given), through ``scaled_dot_product_attention``."""

    def __init__(self, dim: int, num_heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"hidden_size {dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        b, n, d = x.shape
        if context is None:
            k, v = keys_values(self.kv, x, self.num_heads)
        else:
            k, v = context_keys_values(self, self.kv, context, x.dtype, self.num_heads)
        q = self.q(x).reshape(b, n, self.num_heads, d // self.num_heads).transpose(1, 2)
        return self.proj(attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class DiTBlock(nn.Module):
    """A pre-norm transformer block with adaLN-Zero (Peebles & Xie 2023, section 3.2): the
    conditioning ``c [B, D]`` regresses shift, scale and a zero-initialised gate for the
    self-attention and MLP branches. ``context_dim > 0`` adds cross-attention to a token
    sequence, its output projection zero-initialised. ``slices`` (the first axis's patches, set per call) splits the
    self-attention into attention within each frame, then across frames at each position."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, context_dim: int, factorized: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.temporal_attn = Attention(dim, num_heads) if factorized else None
        if self.temporal_attn is not None:
            nn.init.zeros_(self.temporal_attn.proj.weight)
            nn.init.zeros_(self.temporal_attn.proj.bias)
        self.cross = None
        if context_dim > 0:
            self.cross_norm = nn.LayerNorm(dim, eps=1e-6)
            self.cross = Attention(dim, num_heads, context_dim)
            nn.init.zeros_(self.cross.proj.weight)
            nn.init.zeros_(self.cross.proj.bias)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.adaLN[1].weight)
        nn.init.zeros_(self.adaLN[1].bias)

    def forward(self, x: Tensor, c: Tensor, context: Tensor | None, slices: int = 1) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN(c).chunk(6, dim=-1)
        x = x + gate1.unsqueeze(1) * self._self_attention(modulate(self.norm1(x), shift1, scale1), slices)
        if self.cross is not None:
            x = x + self.cross(self.cross_norm(x), context)
        return x + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift2, scale2))

    def _self_attention(self, h: Tensor, slices: int) -> Tensor:
        if self.temporal_attn is None:
            return self.attn(h)
        b, n, d = h.shape
        per_slice = n // slices
        h = self.attn(h.reshape(b * slices, per_slice, d))  # within each slice of the first axis (a frame)
        h = h.reshape(b, slices, per_slice, d).transpose(1, 2).reshape(b * per_slice, slices, d)
        h = h + self.temporal_attn(h)  # across the slices (frames) at each position
        return h.reshape(b, per_slice, slices, d).transpose(1, 2).reshape(b, n, d)


class DiT(nn.Module):
    """Noise-prediction Diffusion Transformer over ``[B, C, *spatial]`` tensors of rank 1, 2 or 3.

    Same contract as :class:`~diffusionkit.nets.unet.UNet`: ``forward(x, t, vector=, concat=,
    context=)``; ``vector [B, embedding_dim]`` joins the time embedding in the adaLN conditioning
    (class labels, a prompt's pooled embedding), ``concat_channels`` channels are concatenated
    to the input before patching (sketches, low-resolution images), ``context [B, L,
    context_dim]`` is read by cross-attention. Each spatial size must be a multiple of its
    patch size. ``position`` is ``sincos`` (fixed, any grid) or ``learned`` (per-axis tables up
    to ``max_len`` patches). ``factorized`` (rank 3 only; the first spatial axis is time) divides
    self-attention into within-frame then across-frame attention. ``long_skips`` and
    ``final_conv`` are U-ViT's (Bao et al. 2023): skips from the first ``(depth - 1) // 2`` blocks to
    the last as many (needs ``depth >= 3``), a residual 3-wide convolution (zero at the start) after
    unpatching.
    """

    def __init__(
        self,
        spatial_rank: int,
        in_channels: int,
        out_channels: int | None = None,
        patch_size: int | Sequence[int] = 2,
        hidden_size: int = 256,
        depth: int = 8,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        position: str = "sincos",
        max_len: int = 64,
        factorized: bool = False,
        long_skips: bool = False,
        final_conv: bool = False,
        concat_channels: int = 0,
        context_dim: int = 0,
    ) -> None:
        super().__init__()
        if spatial_rank not in (1, 2, 3):
            raise ValueError(f"spatial_rank must be 1, 2 or 3, got {spatial_rank}")
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {list(POSITIONS)}, got {position!r}")
        if factorized and spatial_rank != 3:
            raise ValueError(f"factorized=True applies only to spatial_rank 3 ([B, C, T, H, W] inputs), "
                             f"got spatial_rank {spatial_rank}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if long_skips and depth < 3:
            raise ValueError(f"long_skips joins the first (depth - 1) // 2 blocks to the last as many: it needs "
                             f"depth >= 3, got depth {depth}")
        out_channels = in_channels if out_channels is None else out_channels
        self.spatial_rank = spatial_rank
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.concat_channels = concat_channels
        self.context_dim = context_dim
        self.patch = patch_sizes(patch_size, spatial_rank)
        #: what each spatial size must be a multiple of
        self.downsample_factors = self.patch
        #: the width of the conditioning embedding, which a conditioning vector is added to
        self.embedding_dim = hidden_size
        self.factorized = factorized
        self.config = dict(spatial_rank=spatial_rank, in_channels=in_channels, out_channels=out_channels,
                           patch_size=list(self.patch), hidden_size=hidden_size, depth=depth, num_heads=num_heads,
                           mlp_ratio=mlp_ratio, position=position, max_len=max_len, factorized=factorized,
                           long_skips=long_skips, final_conv=final_conv, concat_channels=concat_channels,
                           context_dim=context_dim)
        folded = math.prod(self.patch)
        self.patch_embed = nn.Linear((in_channels + concat_channels) * folded, hidden_size)
        self.positions = LearnedPositions(spatial_rank, hidden_size, max_len) if position == "learned" else None
        self.time_embed = TimestepEmbedder(256, hidden_size)
        self.blocks = nn.ModuleList(DiTBlock(hidden_size, num_heads, mlp_ratio, context_dim, factorized)
                                    for _ in range(depth))
        #: U-ViT's long skips: block ``depth - 1 - i`` also reads block ``i``'s output, for the
        #: first ``(depth - 1) // 2`` blocks (at least one block in the middle joins none)
        self.skip_joins = nn.ModuleList(nn.Linear(2 * hidden_size, hidden_size)
                                        for _ in range((depth - 1) // 2 if long_skips else 0))
        self.final_norm = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.final_adaLN = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))
        self.final = nn.Linear(hidden_size, out_channels * folded)
        self.final_conv = conv_nd(spatial_rank, out_channels, out_channels, 3, padding=1) if final_conv else None
        for layer in (self.final_adaLN[1], self.final, self.final_conv):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, t: Tensor, vector: Tensor | None = None, concat: Tensor | None = None,
                context: Tensor | None = None) -> Tensor:
        """Predict from ``x [B, in_channels, *spatial]`` at time steps ``t [B]`` (a scalar is broadcast)."""
        self._check_input(x, concat, context)
        if concat is not None:
            x = torch.cat([x, concat.to(x.dtype)], dim=1)
        b = x.shape[0]
        folded = fold_patches(x, self.patch)  # [B, C * prod(p), *grid]
        grid = folded.shape[2:]
        tokens = self.patch_embed(folded.flatten(2).transpose(1, 2))  # [B, N, D]
        positions = self.positions(grid) if self.positions is not None else sincos_positions(grid, tokens.shape[-1],
                                                                                               tokens.device)
        tokens = tokens + positions.to(tokens.dtype)
        t = torch.as_tensor(t, device=x.device)
        c = self.time_embed(t.expand(b) if t.dim() == 0 else t)
        if vector is not None:
            if vector.shape != c.shape:
                raise ValueError(f"vector must be of shape {list(c.shape)}, got {list(vector.shape)}")
            c = c + vector
        tokens = self._blocks(tokens, c, context, grid[0] if self.factorized else 1)
        shift, scale = self.final_adaLN(c).chunk(2, dim=-1)
        out = self.final(modulate(self.final_norm(tokens), shift, scale))  # [B, N, C_out * prod(p)]
        out = unfold_patches(out.transpose(1, 2).reshape(b, -1, *grid), self.patch)
        return out if self.final_conv is None else out + self.final_conv(out)

    def _blocks(self, tokens: Tensor, c: Tensor, context: Tensor | None, slices: int) -> Tensor:
        """The transformer blocks in turn, the last ``len(skip_joins)`` joined to the first's outputs."""
        depth, joins = len(self.blocks), len(self.skip_joins)
        skips = []
        for i, block in enumerate(self.blocks):
            if i >= depth - joins:
                tokens = self.skip_joins[i - (depth - joins)](torch.cat([tokens, skips.pop()], dim=-1))
            tokens = block(tokens, c, context, slices)
            if i < joins:
                skips.append(tokens)
        return tokens

    def _check_input(self, x: Tensor, concat: Tensor | None, context: Tensor | None) -> None:
        if x.dim() != self.spatial_rank + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of shape [B, {self.in_channels}, {self.spatial_rank} spatial dims], "
                             f"got shape {list(x.shape)}")
        bad = [s for s, p in zip(x.shape[2:], self.patch) if s % p]
        if bad:
            raise ValueError(f"spatial sizes {list(x.shape[2:])} are not multiples of the patch size {list(self.patch)}")
        expected = [x.shape[0], self.concat_channels, *x.shape[2:]]
        if self.concat_channels and (concat is None or list(concat.shape) != expected):
            got = None if concat is None else list(concat.shape)
            raise ValueError(f"this DiT needs concat of shape {expected}, got {got}")
        if not self.concat_channels and concat is not None:
            raise ValueError("concat was given, but this DiT was built with concat_channels=0")
        if self.context_dim and context is None:
            raise ValueError("this DiT attends to a context (context_dim > 0): pass context=[B, L, D]")
        if not self.context_dim and context is not None:
            raise ValueError("context was given, but this DiT was built with context_dim=0")
