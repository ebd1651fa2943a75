"""Conditions are processed once per sampling run (diffusionkit.nets.step_cache): what is kept,
when it is recomputed, and that samples stay bit for bit the same."""

from __future__ import annotations

import threading

import pytest
import torch

from diffusionkit.config import compose_config
from diffusionkit.nets import conditioned_net, dit, layers, step_cache
from diffusionkit.nets.step_cache import conditions_fixed, once_per_run
from diffusionkit.training.build import build_diffusion_module, build_modality


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, value: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return value * 2


def test_outside_a_run_every_call_computes():
    owner, value, compute = object(), torch.ones(3), Counter()
    for _ in range(3):
        once_per_run(owner, (value,), lambda: compute(value))
    assert compute.calls == 3


def test_inside_a_run_the_same_inputs_compute_once_and_others_again():
    owner, value, compute = object(), torch.ones(3), Counter()
    with torch.no_grad(), conditions_fixed():
        first = once_per_run(owner, (value,), lambda: compute(value))
        assert once_per_run(owner, (value,), lambda: compute(value)) is first and compute.calls == 1
        equal_but_other = torch.ones(3)  # equal values, another tensor: computed again
        once_per_run(owner, (equal_but_other,), lambda: compute(equal_but_other))
        assert compute.calls == 2
        once_per_run(object(), (equal_but_other,), lambda: compute(equal_but_other))  # another owner
        assert compute.calls == 3


def test_a_result_computed_in_another_variant_is_computed_again():
    owner, value, compute = object(), torch.ones(3), Counter()
    with torch.no_grad(), conditions_fixed():
        once_per_run(owner, (value,), lambda: compute(value), torch.float32)
        once_per_run(owner, (value,), lambda: compute(value), torch.float32)
        once_per_run(owner, (value,), lambda: compute(value), torch.bfloat16)
    assert compute.calls == 2


def test_a_tensor_changed_in_place_is_computed_again():
    owner, value, compute = object(), torch.ones(3), Counter()
    with torch.no_grad(), conditions_fixed():
        once_per_run(owner, (value,), lambda: compute(value))
        value.add_(1)
        again = once_per_run(owner, (value,), lambda: compute(value))
    assert compute.calls == 2 and again.tolist() == [4.0, 4.0, 4.0]


def test_nothing_is_kept_while_gradients_are_recorded_or_after_the_run():
    owner, value, compute = object(), torch.ones(3), Counter()
    with conditions_fixed():  # gradients on: a training step inside a run still computes each time
        once_per_run(owner, (value,), lambda: compute(value))
        once_per_run(owner, (value,), lambda: compute(value))
    assert compute.calls == 2
    with torch.no_grad():
        with conditions_fixed():
            once_per_run(owner, (value,), lambda: compute(value))
        with conditions_fixed():  # a new run keeps nothing of the last
            once_per_run(owner, (value,), lambda: compute(value))
    assert compute.calls == 4 and step_cache._KEPT.get() is None


def test_each_thread_has_its_own_run():
    owner, value, compute = object(), torch.ones(3), Counter()

    def other_thread() -> None:  # not inside this thread's run
        with torch.no_grad():
            once_per_run(owner, (value,), lambda: compute(value))
            once_per_run(owner, (value,), lambda: compute(value))

    with torch.no_grad(), conditions_fixed():
        once_per_run(owner, (value,), lambda: compute(value))
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert compute.calls == 3


TEXT_NET = ["modality=toy_1d", "data=toy_blobs", "net.num_heads=2", "cond=text", "text_encoder=word_hash",
            "conditioners.prompt.drop=0.2"]
NETS = {
    "unet": ["net=unet_small", "net.model_channels=16", "net.channel_mult=[1,2]", "net.attention_levels=[1]",
             "net.num_res_blocks=1"],
    "unet_joint": ["net=unet_small", "net.model_channels=16", "net.channel_mult=[1,2]", "net.attention_levels=[1]",
                   "net.num_res_blocks=1", "net.context_attention=joint"],
    "dit": ["net=dit", "net.hidden_size=32", "net.depth=2", "net.patch_size=4"],
}


def text_model(net: str):
    cfg = compose_config("train", [*TEXT_NET, *NETS[net]])
    torch.manual_seed(0)
    model = build_diffusion_module(cfg, build_modality(cfg), num_classes=3).model.eval()
    with torch.no_grad():  # zero-initialised outputs made random, so every cross-attention matters
        for p in model.parameters():
            if not p.any():
                p.normal_(0.0, 0.2)
    model.reset_ema()
    return model


def cross_attentions(model) -> list[torch.nn.Module]:
    net = model.sampling_net
    return [m for m in net.modules() if isinstance(m, layers.CrossAttention)] + \
        [m for m in net.modules() if isinstance(m, layers.SelfAttention) and m.context_kv is not None] + \
        [m.cross for m in net.modules() if isinstance(m, dit.DiTBlock) and m.cross is not None]


def draw(model, steps: int = 6) -> torch.Tensor:
    prompt = model.conditioners["prompt"].read_input("a loud wave", None).expand(4, -1, -1)
    return model.sample(4, torch.tensor([0, 1, 2, 0]), conditions={"prompt": prompt}, guidance_scale=2.0,
                        steps=steps, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("net", sorted(NETS))
def test_sampling_projects_a_prompt_once_per_run_with_the_same_samples(net, monkeypatch):
    model = text_model(net)
    crosses = cross_attentions(model)
    assert crosses
    calls = {id(m): 0 for m in crosses}
    def count(owner: torch.nn.Module):
        return lambda module, args, out: calls.__setitem__(id(owner), calls[id(owner)] + 1)

    for m in crosses:
        (m.kv if hasattr(m, "kv") else m.context_kv).register_forward_hook(count(m))
    conditioned = []
    original = conditioned_net.ConditionedNet.condition
    monkeypatch.setattr(conditioned_net.ConditionedNet, "condition",
                        lambda self, values: conditioned.append(1) or original(self, values))

    kept = draw(model, steps=6)
    assert set(calls.values()) == {1}  # 6 steps, 6 net calls, one projection each
    assert len(conditioned) == 1
    with torch.inference_mode():  # inference tensors have no version counter: their identity is the key
        assert torch.equal(draw(model, steps=6), kept)
    assert set(calls.values()) == {2} and len(conditioned) == 2

    for module in (conditioned_net, layers):  # the same run with nothing kept
        monkeypatch.setattr(module, "once_per_run", lambda owner, inputs, compute, variant=None: compute())
    recomputed = draw(model, steps=6)
    assert min(calls.values()) > 1 and len(conditioned) > 2
    assert torch.equal(kept, recomputed)
