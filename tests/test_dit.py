"""The Diffusion Transformer (net=dit): every rank from one code path, adaLN-Zero, positions,
cross-attention, divided space-time attention, errors, and a tiny real training."""

from __future__ import annotations

import pytest
import torch

from diffusionkit.nets.dit import DiT, LearnedPositions, sincos_positions
from tests.test_nets import perturb, rand


def tiny_dit(rank: int, channels: int = 3, **kw) -> DiT:
    cfg = dict(hidden_size=32, depth=2, num_heads=4)
    cfg.update(kw)
    return DiT(rank, channels, **cfg)


@pytest.mark.parametrize("shape, patch", [((2, 3, 32), 4), ((2, 3, 16, 16), 2), ((2, 3, 8, 24), [2, 4]),
                                          ((2, 3, 4, 8, 8), [1, 2, 2]), ((2, 3, 4, 8, 8), [2, 4, 4])], ids=str)
def test_every_rank_keeps_its_shape_and_starts_at_zero(shape, patch):
    torch.manual_seed(0)
    net = tiny_dit(len(shape) - 2, patch_size=patch)
    out = net(rand(*shape), torch.tensor([1.0, 500.0]))
    assert out.shape == shape
    assert float(out.detach().abs().max()) == 0.0  # adaLN-Zero gates and the zero final layer: a fresh net predicts 0
    assert perturb(net)(rand(*shape), torch.tensor(3.0)).abs().max() > 0  # a scalar time step is broadcast


def test_time_vector_concat_and_context_each_reach_the_output():
    torch.manual_seed(0)
    net = perturb(tiny_dit(2, concat_channels=2, context_dim=6))
    x, t = rand(2, 3, 8, 8), torch.tensor([10.0, 10.0])
    inputs = dict(vector=rand(2, 32, seed=1), concat=rand(2, 2, 8, 8, seed=2), context=rand(2, 5, 6, seed=3))
    base = net(x, t, **inputs)
    assert not torch.allclose(base, net(x, t + 100, **inputs))
    for name, value in inputs.items():
        changed = net(x, t, **{**inputs, name: value + 1.0})
        assert (changed - base).abs().max() > 1e-4, name


def test_a_fresh_cross_attention_is_the_identity_so_a_prompt_can_be_added_to_a_trained_dit():
    torch.manual_seed(0)
    plain = perturb(tiny_dit(2))
    with_context = tiny_dit(2, context_dim=6)
    missing, unexpected = with_context.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".cross" in k for k in missing)
    x, t = rand(2, 3, 8, 8), torch.tensor([5.0, 5.0])
    torch.testing.assert_close(with_context(x, t, context=rand(2, 4, 6)), plain(x, t))


def test_divided_space_time_attention_mixes_frames_only_through_its_temporal_part():
    torch.manual_seed(0)
    net = perturb(tiny_dit(3, patch_size=[1, 2, 2], factorized=True))
    x, t = rand(1, 3, 4, 8, 8), torch.tensor([5.0])
    moved = x.clone()
    moved[:, :, 0] += 1.0  # change the first frame only
    assert (net(moved, t) - net(x, t))[:, :, 3].abs().max() > 1e-4  # the last frame hears of it
    with torch.no_grad():
        for block in net.blocks:
            block.temporal_attn.proj.weight.zero_()
            block.temporal_attn.proj.bias.zero_()
    torch.testing.assert_close((net(moved, t) - net(x, t))[:, :, 1:], torch.zeros(1, 3, 3, 8, 8))


def test_full_space_time_attention_mixes_frames():
    torch.manual_seed(0)
    net = perturb(tiny_dit(3, patch_size=[1, 2, 2]))
    x, t = rand(1, 3, 4, 8, 8), torch.tensor([5.0])
    moved = x.clone()
    moved[:, :, 0] += 1.0
    assert (net(moved, t) - net(x, t))[:, :, 3].abs().max() > 1e-4


def test_long_skips_join_the_first_blocks_to_the_last_around_a_middle():
    torch.manual_seed(0)
    net = perturb(tiny_dit(2, depth=6, long_skips=True))
    assert len(net.skip_joins) == 2  # blocks 0 and 1 feed blocks 5 and 4; blocks 2 and 3 are the middle
    assert len(tiny_dit(2, depth=3, long_skips=True).skip_joins) == 1
    with pytest.raises(ValueError, match=r"long_skips .* needs depth >= 3, got depth 2"):
        tiny_dit(2, depth=2, long_skips=True)
    seen = []
    for i, block in enumerate(net.blocks):
        block.register_forward_hook(lambda module, args, out, i=i: seen.append((i, args[0].detach().clone(), out)))
    x, t = rand(2, 3, 8, 8), torch.tensor([5.0, 5.0])
    net(x, t)
    inputs = {i: tokens for i, tokens, _ in seen}
    outputs = {i: out for i, _, out in seen}
    for block, fed_by in ((4, 1), (5, 0)):
        joined = net.skip_joins[block - 4](torch.cat([outputs[block - 1], outputs[fed_by]], dim=-1))
        torch.testing.assert_close(inputs[block], joined)
    torch.testing.assert_close(inputs[3], outputs[2])  # the middle joins nothing


@torch.no_grad()
def test_final_conv_starts_at_zero_and_adds_a_convolution_of_the_laid_out_patches():
    torch.manual_seed(0)
    x, t = rand(1, 3, 16, 16), torch.tensor([5.0])
    fresh = tiny_dit(2, patch_size=4, final_conv=True)
    assert isinstance(fresh.final_conv, torch.nn.Conv2d) and fresh.final_conv.kernel_size == (3, 3)
    assert fresh.final_conv.weight.abs().max() == 0 and fresh.final_conv.bias.abs().max() == 0
    assert float(fresh(x, t).abs().max()) == 0.0, "a fresh net predicts 0"
    assert isinstance(tiny_dit(3, patch_size=[1, 2, 2], final_conv=True).final_conv, torch.nn.Conv3d)
    net = perturb(tiny_dit(2, patch_size=4, final_conv=True))
    conv, net.final_conv = net.final_conv, None
    patches = net(x, t)
    net.final_conv = conv
    torch.testing.assert_close(net(x, t), patches + conv(patches))


def test_sincos_positions_give_every_patch_its_own_embedding():
    emb = sincos_positions((3, 4, 5), 48)
    assert emb.shape == (60, 48)
    assert torch.cdist(emb, emb).add(torch.eye(60)).min() > 0.1
    assert sincos_positions((4, 4), 34)[:, 32:].abs().max() == 0  # 34 = 2 axes x 16 features + 2 zeros


def test_learned_positions_sum_per_axis_tables_and_refuse_a_grid_past_max_len():
    pos = LearnedPositions(2, 8, max_len=4)
    emb = pos((2, 3))
    torch.testing.assert_close(emb[1 * 3 + 2], pos.tables[0][1] + pos.tables[1][2])
    with pytest.raises(ValueError, match=r"patch grid of \[5, 2\] exceeds the learned positions' max_len=4"):
        pos((5, 2))
    net = tiny_dit(2, position="learned", max_len=8)
    assert net(rand(1, 3, 16, 16), torch.tensor([1.0])).shape == (1, 3, 16, 16)


@pytest.mark.parametrize("kw, message", [
    (dict(position="rope"), "position must be one of ['sincos', 'learned'], got 'rope'"),
    (dict(factorized=True), "factorized=True applies only to spatial_rank 3"),
    (dict(num_heads=5), "hidden_size 32 is not divisible by num_heads=5"),
    (dict(patch_size=[2, 2, 2]), "patch_size must be a positive int or 2 positive ints"),
])
def test_bad_options_name_the_problem(kw, message):
    with pytest.raises(ValueError) as err:
        tiny_dit(2, **kw)
    assert message in str(err.value)


def test_bad_inputs_name_the_problem():
    net = tiny_dit(2, patch_size=4, context_dim=6)
    t = torch.tensor([1.0])
    with pytest.raises(ValueError, match=r"spatial sizes \[8, 10\] are not multiples of the patch size \[4, 4\]"):
        net(rand(1, 3, 8, 10), t, context=rand(1, 2, 6))
    with pytest.raises(ValueError, match=r"expected input of shape \[B, 3, 2 spatial dims\]"):
        net(rand(1, 2, 8, 8), t, context=rand(1, 2, 6))
    with pytest.raises(ValueError, match="this DiT attends to a context"):
        net(rand(1, 3, 8, 8), t)
    with pytest.raises(ValueError, match="concat was given"):
        net(rand(1, 3, 8, 8), t, concat=rand(1, 1, 8, 8), context=rand(1, 2, 6))
    with pytest.raises(ValueError, match=r"vector must be of shape \[1, 32\]"):
        net(rand(1, 3, 8, 8), t, vector=rand(1, 8), context=rand(1, 2, 6))


@pytest.mark.slow
def test_train_net_dit_learns_its_classes_and_its_bundle_samples_again(tmp_path):
    """A tiny DiT trained through the command layer tells two classes apart (class c of toy_blobs
    is a level c), and its bundle rebuilds the DiT."""
    import numpy as np
    import yaml
    from safetensors import safe_open

    from diffusionkit.commands import run_command

    run = tmp_path / "run"
    bundle = run_command("train", ["modality=toy", "data=toy_blobs", "modality.spatial_size=[8,8]",
                                   "data.dataset.num_classes=2", "data.dataset.num_samples=128", "net=dit_tiny",
                                   "net.hidden_size=32", "net.depth=2", "trainer.max_steps=150",
                                   "optim.optimizer.lr=2e-3", "logger=none", "samples.every_n_steps=1000",
                                   "checkpoint.every_n_train_steps=1000", f"out={run}"])
    with safe_open(str(bundle), framework="pt") as f:
        assert yaml.safe_load(f.metadata()["config"])["net"]["_target_"] == "diffusionkit.nets.dit.DiT"
    means = {}
    for label in (0, 1):
        out = tmp_path / f"gen{label}"
        run_command("generate", [f"ckpt={bundle}", f"label={label}", "n=8", "steps=10", "seed=0", f"out={out}"])
        means[label] = float(np.load(out / "grid.npy").mean())
    assert means[1] - means[0] > 0.5, means


def test_an_experiment_written_for_another_net_is_one_line(capsys, tmp_path):
    from diffusionkit.cli import main

    out = tmp_path / "run"
    assert main(["train", "modality=toy", "data=toy_blobs", "net=dit", "+net.model_channels=16",
                 f"out={out}"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "net: DiT takes no option 'model_channels' (set by an override or by an experiment written for another "
        "net); drop it, or choose the net it belongs to")
    assert not out.exists()


@pytest.mark.parametrize("override, message", [
    ("net.attention_levels=[9]", "net: UNet: attention_levels [9] are not levels of channel_mult (0..2) "
                                 "(check the net.* options)"),
    ("net.context_attention=both", "net: UNet: unknown context_attention 'both'; choose one of ['cross', 'joint'] "
                                   "(check the net.* options)"),
    ("net.model_channels=0", "net: UNet: model_channels must be at least 1, got 0 (check the net.* options)"),
])
def test_a_net_refusing_its_options_is_one_line(override, message, tmp_path, capsys):
    from diffusionkit.cli import main

    out = tmp_path / "run"
    assert main(["train", "modality=toy", "data=toy_blobs", "net=unet", override, f"out={out}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(message) and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_patch_size_that_does_not_divide_the_items_is_one_line_before_training(tmp_path, capsys):
    from diffusionkit.cli import main

    out = tmp_path / "run"
    assert main(["train", "modality=toy", "data=toy_blobs", "modality.spatial_size=[16,16]", "net=dit",
                 "net.patch_size=3", f"out={out}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("net: DiT: the items' spatial size [16, 16] is not a multiple of [3, 3], which its patch "
                        "size and levels need (check net.patch_size, or net.channel_mult's number of levels)")
    assert not out.exists()
