"""Tests for diffusionkit.nets.patching and the U-Net's ``patch_size`` option."""

from __future__ import annotations

import pytest
import torch

from diffusionkit.nets import UNet
from diffusionkit.nets.patching import fold_patches, patch_sizes, unfold_patches


def test_fold_moves_each_patch_into_channels():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    folded = fold_patches(x, (2, 2))
    assert folded.shape == (1, 4, 2, 2)
    # channel k holds patch offset (k // 2, k % 2) of every patch; the top-left patch is [0, 1, 4, 5]
    assert folded[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]
    assert folded[0, 0].tolist() == [[0.0, 2.0], [8.0, 10.0]]


@pytest.mark.parametrize("shape,sizes", [((2, 3, 8), (4,)), ((2, 3, 4, 6), (2, 3)), ((2, 2, 4, 6, 8), (1, 2, 4))],
                         ids=str)
def test_unfold_inverts_fold_every_rank(shape, sizes):
    x = torch.randn(*shape)
    folded = fold_patches(x, sizes)
    grid = [s // p for s, p in zip(shape[2:], sizes)]
    assert list(folded.shape) == [shape[0], shape[1] * int(torch.tensor(sizes).prod()), *grid]
    assert torch.equal(unfold_patches(folded, sizes), x)


def test_patch_size_errors_name_the_problem():
    assert patch_sizes(2, 3) == (2, 2, 2)
    assert patch_sizes([1, 2, 2], 3) == (1, 2, 2)
    with pytest.raises(ValueError, match=r"3 positive ints"):
        patch_sizes([2, 2], 3)
    with pytest.raises(ValueError, match=r"not multiples of the patch size \[2, 2\]"):
        fold_patches(torch.zeros(1, 1, 5, 4), (2, 2))


def test_patched_unet_keeps_shapes_and_checks_sizes():
    torch.manual_seed(0)
    net = UNet(3, 1, model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(), num_heads=2,
               factorized=True, patch_size=[1, 2, 2])
    assert net.input_conv.in_channels == 4 and net.out[-1].out_channels == 4
    x = torch.randn(2, 1, 4, 8, 8)
    assert net(x, torch.tensor([1, 2]), vector=torch.randn(2, net.embedding_dim)).shape == x.shape
    assert net.downsample_factors == (2, 4, 4)
    with pytest.raises(ValueError, match=r"spatial size 6 .* multiple of 4 = patch_size"):
        net(torch.randn(1, 1, 4, 8, 6), torch.tensor([1]))
    twin = UNet(**net.config)
    assert twin.patch == (1, 2, 2)
