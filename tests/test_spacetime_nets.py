"""Tests for the factorised space-time U-Net option (rank 3, ``[B, C, T, H, W]``, first axis = time)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from diffusionkit.nets import UNet
from diffusionkit.nets.layers import ResBlock, SelfAttention
from diffusionkit.nets.spacetime import AxisAttention, FactorizedConv3d, SpaceTimeAttention
from diffusionkit.nets.unet import UNetLayers


def tiny(**kw) -> UNet:
    """A small rank-3 U-Net: two levels, attention at the lower one."""
    cfg = dict(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,), num_heads=2)
    cfg.update(kw)
    return UNet(3, 3, **cfg)


@torch.no_grad()
def perturb(net: nn.Module, seed: int = 0) -> nn.Module:
    """Make the zero- and identity-initialised layers generic so every path is active."""
    g = torch.Generator().manual_seed(seed)
    for p in net.parameters():
        p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return net


def rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --- the U-Net -------------------------------------------------------------------------------

@pytest.mark.parametrize("temporal_downsample", [True, False], ids=["tds", "no_tds"])
@pytest.mark.parametrize("factorized", [False, True], ids=["full", "factorized"])
def test_output_shape_with_labels_and_concat(factorized, temporal_downsample):
    torch.manual_seed(0)
    net = perturb(tiny(factorized=factorized, temporal_downsample=temporal_downsample,
                       concat_channels=2, channel_mult=(1, 2, 2)))
    t_len = 4 if temporal_downsample else 3  # without temporal downsampling T needs no multiple of 4
    x = rand(2, 3, t_len, 8, 12)
    out = net(x, torch.tensor([1, 500]), vector=rand(2, net.embedding_dim, seed=3), concat=rand(2, 2, t_len, 8, 12, seed=1))
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("factorized", [False, True], ids=["full", "factorized"])
def test_temporal_downsample_controls_time_axis_at_lowest_level(factorized):
    shapes = {}
    for tds in (True, False):
        net = tiny(factorized=factorized, temporal_downsample=tds, channel_mult=(1, 2, 2))
        net.middle.register_forward_hook(lambda m, i, o, tds=tds: shapes.__setitem__(tds, tuple(o.shape)))
        with torch.no_grad():
            net(rand(1, 3, 4, 8, 8), torch.tensor([1]))
    assert shapes[True] == (1, 16, 1, 2, 2)
    assert shapes[False] == (1, 16, 4, 2, 2)


def test_time_size_check_depends_on_temporal_downsample():
    with pytest.raises(ValueError, match=r"spatial size 3 .* multiple of\s+2"):
        tiny(factorized=True)(rand(1, 3, 3, 8, 8), torch.tensor([1]))
    assert tiny(factorized=True, temporal_downsample=False)(rand(1, 3, 3, 8, 8), torch.tensor([1])).shape[2] == 3
    with pytest.raises(ValueError, match=r"spatial size 6 .* multiple of\s+4"):  # H and W still halve
        tiny(temporal_downsample=False, channel_mult=(1, 2, 2))(rand(1, 3, 4, 8, 6), torch.tensor([1]))


def test_factorized_net_uses_factorized_layers_only():
    net = tiny(factorized=True)
    modules = list(net.modules())
    assert any(isinstance(m, FactorizedConv3d) for m in modules)
    assert any(isinstance(m, SpaceTimeAttention) for m in modules)
    assert not any(isinstance(m, SelfAttention) for m in modules)
    for block in (m for m in modules if isinstance(m, ResBlock)):
        assert isinstance(block.in_layers[-1], FactorizedConv3d) and isinstance(block.out_layers[-1], FactorizedConv3d)
    full = tiny()
    assert not any(isinstance(m, (FactorizedConv3d, SpaceTimeAttention)) for m in full.modules())


def test_factorized_has_fewer_parameters_at_equal_width():
    # the benchmark's default config (bench_spacetime.py): ratio 0.572 measured
    cfg = dict(model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=1, attention_levels=(2,), num_heads=4)
    full, fact = count(UNet(3, 1, **cfg)), count(UNet(3, 1, factorized=True, **cfg))
    assert 0.55 < fact / full < 0.60, fact / full
    # the small test config: 0.592
    assert 0.57 < count(tiny(factorized=True)) / count(tiny()) < 0.61
    # resampling by (1, 2, 2) changes no parameter count
    assert count(tiny(temporal_downsample=False)) == count(tiny())


def test_output_is_zero_at_init():
    net = tiny(factorized=True)
    assert torch.count_nonzero(net(rand(2, 3, 2, 8, 8), torch.tensor([1, 2]))) == 0


@pytest.mark.parametrize("rank", [1, 2])
def test_options_raise_for_other_ranks(rank):
    with pytest.raises(ValueError, match=rf"factorized=True .*spatial_rank 3.*got spatial_rank {rank}"):
        UNet(rank, 3, factorized=True)
    with pytest.raises(ValueError, match=rf"temporal_downsample=False .*got spatial_rank {rank}"):
        UNet(rank, 3, temporal_downsample=False)
    assert UNet(rank, 3, model_channels=8, factorized=False, temporal_downsample=True).config["factorized"] is False


def test_layer_factory_factors():
    assert UNetLayers(2).axis_factors == (2, 2)
    assert UNetLayers(3).axis_factors == (2, 2, 2)
    assert UNetLayers(3, factorized=True, temporal_downsample=False).axis_factors == (1, 2, 2)


def test_gradients_reach_temporal_weights():
    torch.manual_seed(0)
    net = perturb(tiny(factorized=True, concat_channels=1))
    out = net(rand(2, 3, 4, 4, 4), torch.tensor([0.1, 0.9]), vector=rand(2, net.embedding_dim, seed=3), concat=rand(2, 1, 4, 4, 4))
    out.square().mean().backward()
    assert not [n for n, p in net.named_parameters() if p.grad is None]
    temporal = [(n, p) for n, p in net.named_parameters() if "temporal" in n and n.endswith("weight")]
    assert len(temporal) >= 10  # conv pairs and temporal attention
    assert all(p.grad.abs().sum() > 0 for _, p in temporal), [n for n, p in temporal if p.grad.abs().sum() == 0]


def test_zero_initialised_factorized_branch_still_learns():
    """Only the spatial factor of the zero-initialised output conv is zeroed, so its gradient is non-zero."""
    torch.manual_seed(0)
    block = ResBlock(3, 4, 4, emb_dim=8, conv=FactorizedConv3d)
    x = rand(2, 4, 3, 4, 4)
    out = block(x, rand(2, 8, seed=1))
    torch.testing.assert_close(out, x)  # the residual branch starts at zero
    out.square().sum().backward()
    last = block.out_layers[-1]
    assert last.spatial.weight.grad.abs().sum() > 0
    torch.testing.assert_close(last.temporal.weight, torch.nn.init.dirac_(torch.empty_like(last.temporal.weight)))


def test_config_rebuilds_same_network():
    torch.manual_seed(0)
    net = perturb(tiny(factorized=True, temporal_downsample=False))
    assert net.config["factorized"] is True and net.config["temporal_downsample"] is False
    twin = UNet(**net.config)
    twin.load_state_dict(net.state_dict())
    x, t = rand(1, 3, 3, 8, 8), torch.tensor([4])
    torch.testing.assert_close(net(x, t), twin(x, t))


def test_factorized_config_file():
    from diffusionkit.config import compose_config

    cfg = compose_config("train", ["modality=toy", "data=toy_blobs", "net=unet_factorized"])
    assert cfg.net.factorized is True and cfg.net.temporal_downsample is True
    net = instantiate(cfg.net, model_channels=8, num_heads=2)(spatial_rank=3, in_channels=1)
    assert isinstance(net.middle[1], SpaceTimeAttention)
    with pytest.raises(ValueError, match="factorized=True"):
        instantiate(cfg.net)(spatial_rank=2, in_channels=3)
    default = compose_config("train", ["modality=toy", "data=toy_blobs"]).net
    assert default.factorized is False and default.temporal_downsample is True


# --- the layers ------------------------------------------------------------------------------

def test_factorized_conv_starts_as_per_frame_spatial_conv():
    torch.manual_seed(0)
    conv = FactorizedConv3d(3, 5)
    x = rand(2, 3, 6, 7, 8)
    b, c, t, h, w = x.shape
    frames = x.transpose(1, 2).reshape(b * t, c, h, w)
    per_frame = F.conv2d(frames, conv.spatial.weight.squeeze(2), conv.spatial.bias, padding=1)
    expected = per_frame.reshape(b, t, 5, h, w).transpose(1, 2)
    torch.testing.assert_close(conv(x), expected)
    with torch.no_grad():  # a trained temporal conv mixes frames: no longer per frame
        conv.temporal.weight.add_(0.1 * rand(*conv.temporal.weight.shape, seed=1))
    assert not torch.allclose(conv(x), expected, atol=1e-3)


def test_factorized_conv_equals_its_two_conv3d_layers():
    """The fast temporal path (a Conv2d over a view) computes exactly ``temporal(spatial(x))``."""
    conv = perturb(FactorizedConv3d(3, 5).double())
    x = rand(2, 3, 6, 7, 8, dtype=torch.float64)
    torch.testing.assert_close(conv(x), conv.temporal(conv.spatial(x)))


def test_factorized_conv_parameter_count_and_receptive_field():
    conv = FactorizedConv3d(4, 6)
    assert count(conv) == 9 * 4 * 6 + 6 + 3 * 6 * 6 + 6
    perturb(conv)
    x = torch.zeros(1, 4, 7, 7, 7, requires_grad=True)
    conv(x)[0, :, 3, 3, 3].sum().backward()
    reach = x.grad[0].abs().sum(0) > 0  # [T, H, W]: the 3x3x3 neighbourhood, like a full Conv3d
    assert reach.sum() == 27 and reach[2:5, 2:5, 2:5].all()


@pytest.mark.parametrize("over", ["space", "time"])
def test_axis_attention_matches_self_attention_on_each_sequence(over):
    """Against the rank-generic SelfAttention run on each frame (space) or each position's frames (time)."""
    torch.manual_seed(0)
    att = perturb(AxisAttention(8, 2, over=over).double())
    ref = SelfAttention(8, 2).double()
    ref.qkv, ref.proj, ref.norm = att.qkv, att.proj, nn.Identity()  # same weights, normalised outside
    x = rand(2, 8, 3, 4, 5, dtype=torch.float64)
    b, c, t, h, w = x.shape
    xn = att.norm(x)
    if over == "space":
        seqs = xn.transpose(1, 2).reshape(b * t, c, h, w)
        delta = (ref(seqs) - seqs).reshape(b, t, c, h, w).transpose(1, 2)
    else:
        seqs = xn.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t)
        delta = (ref(seqs) - seqs).reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2)
    torch.testing.assert_close(att(x), x + delta)


def test_attention_starts_as_identity():
    x = rand(1, 8, 3, 4, 4)
    torch.testing.assert_close(SpaceTimeAttention(8, 2)(x), x)


def test_temporal_attention_mixes_frames_spatial_attention_does_not():
    torch.manual_seed(0)
    x = rand(1, 8, 6, 4, 4, dtype=torch.float64)
    # shuffle frame 0's pixels: the clip's GroupNorm statistics stay the same, only frame 0 changes
    y = x.clone()
    y[:, :, 0] = x[:, :, 0].flatten(-2)[..., torch.randperm(16)].reshape(1, 8, 4, 4)
    spatial = perturb(AxisAttention(8, 2, over="space").double())
    torch.testing.assert_close(spatial(x)[:, :, 5], spatial(y)[:, :, 5])
    assert not torch.allclose(spatial(x)[:, :, 0], spatial(y)[:, :, 0])
    spacetime = perturb(SpaceTimeAttention(8, 2).double())
    assert not torch.allclose(spacetime(x)[:, :, 5], spacetime(y)[:, :, 5])
    # and any change at frame 0 reaches frame 5 through the temporal part
    z = x.clone()
    z[:, :, 0] += 1.0
    assert not torch.allclose(spacetime(x)[:, :, 5], spacetime(z)[:, :, 5])


def test_spacetime_layers_reject_other_ranks():
    with pytest.raises(ValueError, match=r"\[B, C, T, H, W\]"):
        FactorizedConv3d(2, 2)(rand(1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"\[B, C, T, H, W\]"):
        SpaceTimeAttention(4, 2)(rand(1, 4, 8))
    with pytest.raises(ValueError, match="num_heads"):
        SpaceTimeAttention(6, 4)
