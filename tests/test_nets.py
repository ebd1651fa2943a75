"""Tests for diffusionkit.nets: shapes for every rank, conditioning, errors, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from diffusionkit.nets import UNet, timestep_embedding
from diffusionkit.nets import layers
from diffusionkit.nets.layers import SelfAttention, attention, norm


def tiny(rank: int, **kw) -> UNet:
    """A few-thousand-parameter U-Net: two levels, attention at the lower one."""
    cfg = dict(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,), num_heads=2)
    cfg.update(kw)
    return UNet(rank, 3, **cfg)


@torch.no_grad()
def perturb(net: nn.Module, seed: int = 0) -> nn.Module:
    """Make the zero-initialised layers non-zero so every input can reach the output."""
    g = torch.Generator().manual_seed(seed)
    for p in net.parameters():
        p.add_(0.1 * torch.randn(p.shape, generator=g))
    return net


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "shape", [(2, 3, 32), (2, 3, 16, 16), (2, 3, 4, 8, 8), (2, 3, 8, 24), (2, 3, 2, 4, 6)], ids=str
)
def test_output_shape_every_rank(shape):
    torch.manual_seed(0)
    net = tiny(len(shape) - 2)
    assert net(rand(*shape), torch.tensor([1, 500])).shape == shape


def test_out_channels_and_three_levels():
    net = UNet(2, 3, out_channels=5, model_channels=8, channel_mult=(1, 2, 2), num_res_blocks=1,
               attention_levels=(0, 2), num_heads=2)
    assert net(rand(1, 3, 8, 12), torch.tensor([3])).shape == (1, 5, 8, 12)


def test_output_is_zero_at_init():
    net = tiny(2)
    assert torch.count_nonzero(net(rand(2, 3, 8, 8), torch.tensor([1, 2]))) == 0


def test_concat_changes_output_not_shape():
    torch.manual_seed(0)
    net = perturb(tiny(2, concat_channels=2))
    x, t = rand(2, 3, 8, 8), torch.tensor([10, 20])
    a = net(x, t, concat=rand(2, 2, 8, 8, seed=1))
    b = net(x, t, concat=rand(2, 2, 8, 8, seed=2))
    assert a.shape == x.shape
    assert not torch.allclose(a, b)


def test_vector_changes_output_and_must_match_the_embedding():
    torch.manual_seed(0)
    net = perturb(tiny(1))
    x, t = rand(2, 3, 16), torch.tensor([7, 7])
    a = net(x, t, vector=rand(2, net.embedding_dim, seed=1))
    assert not torch.allclose(a, net(x, t, vector=rand(2, net.embedding_dim, seed=2)))
    torch.testing.assert_close(net(x, t), net(x, t, vector=torch.zeros(2, net.embedding_dim)))
    with pytest.raises(ValueError, match=rf"vector must be of shape \[2, {net.embedding_dim}\], got \[2, 5\]"):
        net(x, t, vector=rand(2, 5))


def test_context_reaches_the_output_by_cross_attention():
    torch.manual_seed(0)
    net = perturb(tiny(2, context_dim=6))
    x, t = rand(2, 3, 8, 8), torch.tensor([3, 9])
    a = net(x, t, context=rand(2, 5, 6, seed=1))
    assert a.shape == x.shape
    assert not torch.allclose(a, net(x, t, context=rand(2, 5, 6, seed=2)))
    assert net(x, t, context=rand(2, 1, 6)).shape == x.shape  # any sequence length
    with pytest.raises(ValueError, match="pass context"):
        net(x, t)
    with pytest.raises(ValueError, match="context_dim=0"):
        tiny(2)(x, t, context=rand(2, 5, 6))


def test_cross_attention_levels_choose_which_attention_blocks_attend_to_the_context():
    def cross_blocks(net: UNet) -> list[str]:
        return sorted(name for name, m in net.named_modules() if type(m).__name__ == "CrossAttention")

    everywhere = tiny(2, channel_mult=(1, 2, 2), attention_levels=(1, 2), context_dim=6)
    lowest = tiny(2, channel_mult=(1, 2, 2), attention_levels=(1, 2), context_dim=6, cross_attention_levels=[2])
    assert len(cross_blocks(everywhere)) == 7 and len(cross_blocks(lowest)) == 4  # level 1 has 3 (1 down, 2 up)
    assert set(cross_blocks(lowest)) < set(cross_blocks(everywhere))
    assert lowest.config["cross_attention_levels"] == [2] and everywhere.config["cross_attention_levels"] is None
    x, t = rand(2, 3, 8, 8), torch.tensor([3, 9])
    net = perturb(lowest)
    assert not torch.allclose(net(x, t, context=rand(2, 5, 6, seed=1)), net(x, t, context=rand(2, 5, 6, seed=2)))
    with pytest.raises(ValueError, match=r"cross_attention_levels \[0\] have no attention block to follow"):
        tiny(2, channel_mult=(1, 2, 2), attention_levels=(1, 2), context_dim=6, cross_attention_levels=[0])


def test_float_and_int_timesteps():
    torch.manual_seed(0)
    net = perturb(tiny(2))
    x = rand(2, 3, 8, 8)
    as_int = net(x, torch.tensor([5, 5]))
    torch.testing.assert_close(as_int, net(x, torch.tensor([5.0, 5.0])))
    torch.testing.assert_close(as_int, net(x, torch.tensor(5)))  # a scalar is broadcast
    assert not torch.allclose(net(x, torch.tensor([0.25, 0.25])), net(x, torch.tensor([0.75, 0.75])))


def test_timestep_embedding():
    t = torch.tensor([0.0, 0.5, 1.0, 999.0])
    emb = timestep_embedding(t, 32)
    assert emb.shape == (4, 32) and emb.dtype == torch.float32
    torch.testing.assert_close(emb, timestep_embedding(t.clone(), 32))
    assert torch.cdist(emb, emb).add(torch.eye(4)).min() > 1e-3  # pairwise distinct
    torch.testing.assert_close(timestep_embedding(torch.arange(3), 8), timestep_embedding(torch.arange(3.0), 8))
    assert timestep_embedding(t, 7).shape == (4, 7)


def test_spatial_size_error_names_numbers():
    net = tiny(2, channel_mult=(1, 2, 2), attention_levels=())
    with pytest.raises(ValueError, match=r"spatial size 6 .* multiple of\s+4"):
        net(rand(1, 3, 8, 6), torch.tensor([1]))


def test_channel_and_conditioning_errors():
    net = tiny(2, concat_channels=2)
    x, t = rand(1, 3, 8, 8), torch.tensor([1])
    with pytest.raises(ValueError, match=r"expected 3 input channels, got 4"):
        net(rand(1, 4, 8, 8), t, concat=rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="concat"):
        net(x, t)
    with pytest.raises(ValueError, match=r"\[1, 2, 8, 8\].*\[1, 1, 8, 8\]"):
        net(x, t, concat=rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="spatial"):
        net(rand(1, 3, 8), t, concat=rand(1, 2, 8))
    with pytest.raises(ValueError, match="concat_channels=0"):
        tiny(2)(x, t, concat=rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="num_heads"):
        SelfAttention(6, 4)


def test_gradients_reach_first_conv():
    torch.manual_seed(0)
    net = perturb(tiny(3, concat_channels=1))
    out = net(rand(2, 3, 2, 4, 4), torch.tensor([0.1, 0.9]), vector=rand(2, net.embedding_dim, seed=3),
              concat=rand(2, 1, 2, 4, 4))
    out.square().mean().backward()
    assert net.input_conv.weight.grad is not None and net.input_conv.weight.grad.abs().sum() > 0
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing


def test_config_rebuilds_same_network():
    torch.manual_seed(0)
    net = perturb(tiny(2, concat_channels=1, out_channels=2))
    twin = UNet(**net.config)
    twin.load_state_dict(net.state_dict())
    x, t, c = rand(1, 3, 8, 8), torch.tensor([4]), rand(1, 1, 8, 8)
    torch.testing.assert_close(net(x, t, concat=c), twin(x, t, concat=c))


def test_group_norm_divides_channels():
    for ch in (8, 24, 48, 96, 100, 128):
        gn = norm(ch)
        assert ch % gn.num_groups == 0 and gn.num_groups <= 32


def test_default_image_config_size():
    net = UNet(2, 3)
    n = sum(p.numel() for p in net.parameters())
    print(f"default 2-D UNet: {n / 1e6:.2f} M parameters")
    assert 4e6 <= n <= 8e6
    with torch.no_grad():
        assert net(rand(1, 3, 32, 32), torch.tensor([0.5])).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("rank", [2, 3])
def test_activations_follow_channels_last_weights_even_from_one_input_channel(rank):
    from diffusionkit.devices import to_channels_last
    from diffusionkit.nets.layers import CHANNELS_LAST

    net = UNet(rank, 1, model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,), num_heads=2)
    seen = []
    net.down[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.randn(2, 1, *(8,) * rank)
    expected = net(x, torch.tensor([3, 9]))
    assert seen[-1].is_contiguous() and not seen[-1].is_contiguous(memory_format=CHANNELS_LAST[rank])
    assert to_channels_last(net, rank) > 0
    out = net(x, torch.tensor([3, 9]))
    assert seen[-1].is_contiguous(memory_format=CHANNELS_LAST[rank]) and not seen[-1].is_contiguous()
    assert torch.allclose(out, expected, atol=1e-5)


def test_self_attention_takes_sdpa_s_fused_kernel_and_matches_the_math():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(0)
    layer = SelfAttention(16, 2)
    nn.init.normal_(layer.proj.weight)  # zero-initialised: the block would be the identity
    x = torch.randn(2, 16, 4, 4, requires_grad=True)
    fused = layer(x)
    with sdpa_kernel(SDPBackend.MATH):
        reference = layer(x)
    assert torch.allclose(fused, reference, atol=1e-5)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):  # raises where q, k, v are laid out for the math path only
        layer(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_attention_runs_bf16_backward_passes_in_float32_on_cpu_and_bf16_forward_passes_as_they_are(monkeypatch):
    seen: list[torch.dtype] = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording(q, k, v):
        seen.append(q.dtype)
        return sdpa(q, k, v)

    monkeypatch.setattr(layers.F, "scaled_dot_product_attention", recording)
    q, k, v = (torch.randn(2, 2, 8, 4, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(q, k, v)
    out.float().sum().backward()
    assert out.dtype == torch.bfloat16 and q.grad is not None and q.grad.dtype == torch.bfloat16
    with torch.no_grad():
        assert attention(q, k, v).dtype == torch.bfloat16
    assert seen == [torch.float32, torch.bfloat16]
    expected = sdpa(q.float(), k.float(), v.float())
    assert torch.allclose(out.float(), expected, atol=1e-2)


@pytest.mark.parametrize("size", [4, 32])  # a small map takes the contiguous detour, a large one does not
def test_group_norm_keeps_channels_last_and_the_result(size):
    layer = norm(64)
    nn.init.normal_(layer.weight)
    nn.init.normal_(layer.bias)
    x = torch.randn(2, 64, size, size).contiguous(memory_format=torch.channels_last)
    out = layer(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    expected = nn.functional.group_norm(x.contiguous(), 32, layer.weight, layer.bias, layer.eps)
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("rank", [2, 3])
def test_group_norm_gradients_match_and_come_back_channels_last(rank):
    """Differentiated, every map takes the contiguous detour; its gradient returns in the input's
    layout, so a residual's two gradients add in one layout."""
    layout = torch.channels_last if rank == 2 else torch.channels_last_3d
    layer = norm(8, max_groups=4)
    nn.init.normal_(layer.weight)
    x = torch.randn(2, 8, *[20] * rank).contiguous(memory_format=layout).requires_grad_()
    reference = x.detach().contiguous().requires_grad_()
    upstream = torch.randn(x.shape)
    (layer(x) * upstream).sum().backward()
    weight_grad = layer.weight.grad.clone()
    layer.weight.grad = None
    (nn.functional.group_norm(reference, 4, layer.weight, layer.bias, layer.eps) * upstream).sum().backward()
    assert x.grad.is_contiguous(memory_format=layout) and not x.grad.is_contiguous()
    assert torch.allclose(x.grad, reference.grad, atol=1e-5)
    assert torch.allclose(weight_grad, layer.weight.grad, atol=1e-4)
