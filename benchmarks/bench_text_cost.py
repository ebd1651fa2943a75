"""What a text prompt costs beside class labels, at equal net width (issue bar: <= 25% more).

    python benchmarks/bench_text_cost.py [--recipe image|audio] [--batch 64] [--steps 5] [--repeats 11]
        [--extra OVERRIDE ...]

Two models from the same recipe (image: experiment=shapes_text's net on [3, 32, 32]; audio:
experiment=drums_real's net on [1, 96, 64]): class labels only, and class labels plus cond=text
(all-MiniLM-L6-v2 token states through cross-attention at the net's attention levels, pooled
embedding added to the time embedding). Timed interleaved in one process, median of repeats:

- a training step: forward + loss + backward + AdamW on a batch, in the precision the recipes
  train in (``--precision auto``: bf16 autocast where the CPU computes bf16 natively, else
  fp32), captions' encodings cached (as in training after their first sight);
- sampling: ``--n`` items, DPM-Solver++ 20 steps with classifier-free guidance on every condition
  given, a new prompt encoded in every call (as a command or the studio does for a new prompt),
  by a copy of each model set up as the commands sample (:func:`diffusionkit.devices.prepare_to_sample`:
  the same precision, channels-last weights for 2-D nets; what depends on the conditions alone is
  computed once per call, :mod:`diffusionkit.nets.step_cache`);
- the text encoder's load, once per process (a command that takes a prompt pays it; one
  without a prompt never loads it).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_precision, print_table, train_step  # noqa: E402

RECIPES = {
    "image": ["modality=image", "experiment=shapes_text"],
    "audio": ["modality=audio", "experiment=drums_real", "cond=text"],
}
CAPTIONS = ["a small red circle top left", "a large blue square bottom", "a triangle right", "short bright kick",
            "long dark soft snare", "a green cross top"]


def build(recipe: str, text: bool, extra: tuple[str, ...] = ()):
    from diffusionkit.build import build_diffusion_model, build_modality
    from omegaconf import open_dict

    from diffusionkit.config import compose_config

    overrides = [*RECIPES[recipe], *extra]
    if not text:
        overrides = [o for o in overrides if o != "cond=text"] + ["cond=none"]
    cfg = compose_config("train", overrides)
    if not text:  # experiment=shapes_text names the prompt's options itself
        with open_dict(cfg):
            cfg.pop("conditioners", None)
            cfg.pop("text_encoder", None)
    modality = build_modality(cfg)
    torch.manual_seed(0)
    model = build_diffusion_model(cfg, modality, num_classes=8)
    assert ("prompt" in model.conditioners) == text, sorted(model.conditioners)
    return model, modality


def batch_of(model, batch: int) -> dict:
    data = {"x": torch.randn(batch, *model.sample_shape).clamp(-1, 1), "label": torch.arange(batch) % 8,
            "caption": [CAPTIONS[i % len(CAPTIONS)] for i in range(batch)]}
    return data


def train_seconds(model, data: dict, steps: int, precision: str) -> float:
    optimizer = torch.optim.AdamW(model.net.parameters(), lr=1e-4)
    model.train()
    start = 0.0
    for i in range(steps + 1):
        if i == 1:
            start = time.perf_counter()
        train_step(model, optimizer, data, precision)
    return (time.perf_counter() - start) / steps


def sample_seconds(model, n: int, prompt: str | None) -> float:
    model.eval()
    start = time.perf_counter()
    conditions = None
    if prompt is not None:
        value = model.conditioners["prompt"].read_input(prompt, None)
        conditions = {"prompt": value.expand(n, *value.shape)}
    model.sample(n, torch.zeros(n, dtype=torch.long), conditions=conditions, guidance_scale=2.0, steps=20,
                 generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="image")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=11, help="timed rounds; the median is shown (the "
                        "machine's speed drifts: 5 rounds spread the sampling cost over 6 points)")
    parser.add_argument("--extra", nargs="*", default=[], help="overrides for both models, e.g. "
                        "'net.cross_attention_levels=[2]' or net.context_attention=cross")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="auto: bf16 where the CPU computes it natively, as the recipes train")
    args = parser.parse_args()
    precision = cpu_precision(args.precision)

    from diffusionkit.devices import prepare_to_sample

    built = {text: build(args.recipe, text, tuple(args.extra)) for text in (False, True)}
    models = {text: model for text, (model, _) in built.items()}
    encoder = models[True].conditioners["prompt"].encoder
    start = time.perf_counter()
    encoder.encode(CAPTIONS)  # loads the encoder; training then finds every caption cached
    load = time.perf_counter() - start
    samplers = {text: copy.deepcopy(model) for text, model in models.items()}
    for text, sampler in samplers.items():
        prepare_to_sample(sampler, precision, built[text][1].spatial_rank)
    data = batch_of(models[True], args.batch)
    times: dict[tuple[bool, str], list[float]] = {(t, k): [] for t in (False, True) for k in ("train", "sample")}
    for repeat in range(args.repeats):
        for text in (False, True):
            times[text, "train"].append(train_seconds(models[text], data, args.steps, precision))
            times[text, "sample"].append(sample_seconds(samplers[text], args.n,
                                                        f"a red circle {repeat}" if text else None))
    rows = []
    for kind, unit in (("train", f"s/step (batch {args.batch})"), ("sample", f"s per {args.n} items, 20 steps")):
        plain, text = (statistics.median(times[t, kind]) for t in (False, True))
        rows.append([kind, unit, f"{plain:.3f}", f"{text:.3f}", f"{text / plain - 1:+.1%}"])
    params = {t: sum(p.numel() for p in models[t].net.parameters()) / 1e6 for t in (False, True)}
    print(f"recipe {args.recipe}: {params[False]:.2f} M parameters with class labels, {params[True]:.2f} M with "
          f"the prompt as well (text encoder not counted: frozen, 22.7 M); torch threads {torch.get_num_threads()}; "
          f"{precision}")
    print_table(["what", "unit", "class labels", "labels + text", "text costs"], rows)
    print(f"text encoder load (once per process that takes a prompt): {load:.2f} s")


if __name__ == "__main__":
    main()
