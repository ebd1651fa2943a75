"""Low-rank adapters on any layer kind: they start as the base layer, fold into its weight
exactly, expose the adapted weight to parents that read it, and refuse factors that do not fit
before computing anything."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from diffusionkit.nets.conditioning import TimestepEmbedder
from diffusionkit.nets.lora import LoRA, adaptable_layers, add_lora, merged_weight
from diffusionkit.nets.spacetime import FactorizedConv3d


@pytest.mark.parametrize("layer, x", [
    (nn.Linear(6, 5), torch.randn(3, 6)),
    (nn.Conv1d(4, 5, 3, padding=1), torch.randn(2, 4, 9)),
    (nn.Conv2d(4, 5, 3, stride=2, padding=1), torch.randn(2, 4, 8, 8)),
    (nn.Conv3d(4, 5, 3, padding=1), torch.randn(2, 4, 3, 6, 6)),
])
def test_lora_starts_as_the_base_and_folds_into_its_weight(layer, x):
    torch.manual_seed(0)
    wrapped = LoRA(layer, rank=2, alpha=4.0)
    torch.testing.assert_close(wrapped(x), layer(x))
    with torch.no_grad():
        wrapped.up.weight.normal_()
    folded = type(layer)(*_shape_args(layer), **_kwargs(layer))
    folded.load_state_dict(layer.state_dict())
    with torch.no_grad():
        folded.weight.copy_(merged_weight(layer.weight, wrapped.down.weight, wrapped.up.weight, wrapped.scale))
    torch.testing.assert_close(folded(x), wrapped(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(wrapped.weight, folded.weight)


def _shape_args(layer):
    return (layer.in_features, layer.out_features) if isinstance(layer, nn.Linear) else \
        (layer.in_channels, layer.out_channels, layer.kernel_size)


def _kwargs(layer):
    return {} if isinstance(layer, nn.Linear) else {"stride": layer.stride, "padding": layer.padding}


def test_parents_that_read_a_weight_see_the_adapted_one():
    torch.manual_seed(0)
    embedder = TimestepEmbedder(8, 16)  # reads mlp[0].weight.dtype
    conv = FactorizedConv3d(4, 4)  # convolves with temporal.weight directly
    added = add_lora(embedder, adaptable_layers(embedder, ".*"), 2, 2.0)
    added.update(add_lora(conv, ["temporal"], 2, 2.0))
    assert embedder(torch.tensor([1, 2])).shape == (2, 16)
    conv(torch.randn(1, 4, 3, 4, 4)).square().mean().backward()
    assert conv.temporal.up.weight.grad is not None and conv.temporal.up.weight.grad.abs().sum() > 0


def test_factors_that_do_not_fit_are_refused_before_any_work():
    weight = torch.zeros(8, 8)
    with pytest.raises(ValueError, match=r"low-rank factors \[1, 100000\] x \[100000, 1\] do not fit"):
        merged_weight(weight, torch.zeros(1, 100000), torch.zeros(100000, 1), 1.0)  # a 40 GB product, never made
    with pytest.raises(ValueError, match="do not fit"):
        merged_weight(weight, torch.zeros(2, 8), torch.zeros(8), 1.0)


def test_targets_that_are_no_regular_expression_are_one_line():
    from diffusionkit.errors import UsageError
    from diffusionkit.nets.lora import adaptable_layers

    with pytest.raises(UsageError, match=r"targets='\(\[' is not a regular expression \(unterminated character set"):
        adaptable_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)), "([")
