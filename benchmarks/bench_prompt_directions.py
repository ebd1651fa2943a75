"""``evaluate``'s direction prompt checks alone ("low kick" -> "high kick": does the measured
descriptor move the named way?), on bundles or a run's checkpoints part-way through training.

    python benchmarks/bench_prompt_directions.py --ckpt runs/drums_text_htk/checkpoints/*.ckpt \
        [--checks low/high] [--n 16]

The checks are the modality's own (``Modality.prompt_checks``), run by the very function
``diffusionkit evaluate`` runs (``evaluate_prompts.prompt_scores``) with evaluate's settings
(``prompts.guidance``, seed 0, the same seeds for both prompts of a pair), so a row here equals
evaluate's row for the same checkpoint and ``prompts.n``. Direction checks need no judge, so this
takes minutes where the whole ``evaluate`` (judges, every prompt check) takes much longer.
``--checks`` keeps the checks whose name starts with one of the given words. Prints one row per
check and checkpoint, and the pooled rate of seen and unseen words.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402


def direction_rows(ckpt: str, n: int, prefixes: list[str]) -> list[dict]:
    """evaluate's rows of the direction checks of ``ckpt`` whose names start with ``prefixes``."""
    from diffusionkit.apps.common import text_condition
    from diffusionkit.apps.evaluate_prompts import prompt_scores
    from diffusionkit.bundle import load_model
    from diffusionkit.config import compose_config
    from diffusionkit.prompt_checks import WordDirection

    model = load_model(ckpt)
    if text_condition(model) is None:
        raise SystemExit(f"{ckpt}: the model has no text prompt")
    cfg = compose_config("evaluate", [f"ckpt={ckpt}", f"prompts.n={n}"])
    return prompt_scores(model, None, cfg, keep=lambda check: isinstance(check, WordDirection) and (
        not prefixes or check.name.startswith(tuple(prefixes))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", nargs="+", required=True, help="bundles or .ckpt files")
    parser.add_argument("--checks", nargs="*", default=[], help="check name prefixes, e.g. low/high")
    parser.add_argument("--n", type=int, default=16, help="pairs per check (evaluate's prompts.n)")
    args = parser.parse_args()
    rows = []
    for ckpt in args.ckpt:
        start = time.perf_counter()
        found = direction_rows(ckpt, args.n, args.checks)
        for seen in (False, True):
            group = [r for r in found if r["unseen"] == seen]
            rows += [(Path(ckpt).name, r["check"] + (" (unseen)" if seen else ""), f"{r['rate']:.1%}",
                      f"{r['low_mean']:.3g} -> {r['high_mean']:.3g}") for r in group]
            if group:
                pooled = sum(r["rate"] for r in group) / len(group)
                rows.append((Path(ckpt).name, f"pooled{' unseen' if seen else ''} ({len(group)} checks)",
                             f"**{pooled:.1%}**", f"{time.perf_counter() - start:.0f} s"))
    print_table(["checkpoint", "check", "pairs moved the named way", "descriptor means / time"], rows)


if __name__ == "__main__":
    main()
