"""The image demo (`make demo-digits`): train a small class-conditional digits model on the CPU, then
generate every digit and judge the samples with a classifier trained on the real digits.

Everything lands in outputs/demo/<date>_<time>/ (train/, samples/, evaluation/).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from diffusionkit.allocator import relaunch_with_allocator

if __name__ == "__main__":  # on the allocator the diffusionkit command runs on (tcmalloc where installed)
    relaunch_with_allocator([sys.executable, *sys.orig_argv[1:]])

from diffusionkit.commands import quiet_libraries, run_command  # noqa: E402

STEPS = 500


def main() -> int:
    quiet_libraries()
    root = Path("outputs/demo") / time.strftime("%Y-%m-%d_%H-%M-%S")
    started = time.time()
    print(f"[demo] training a class-conditional digits model ({STEPS} steps on CPU) -> {root / 'train'}")
    bundle = run_command("train", ["modality=image", "data=digits", "experiment=digits_fast",
                                   f"trainer.max_steps={STEPS}", f"out={root / 'train'}"])
    print(f"[demo] trained in {time.time() - started:.0f} s")
    run_command("generate", [f"ckpt={bundle}", "n=40", "steps=20", "guidance=2.0", f"out={root / 'samples'}"])
    run_command("evaluate", [f"ckpt={bundle}", "n_per_class=20", f"out={root / 'evaluation'}"])
    print(f"\n[demo] done in {time.time() - started:.0f} s. Files:")
    print(f"  model bundle      {bundle}")
    print(f"  training samples  {root / 'train' / 'samples'}  (TensorBoard: {root / 'train' / 'tb'})")
    print(f"  generated digits  {root / 'samples'}  (one PNG per sample, grid.png, recipe.yaml)")
    print(f"  evaluation        {root / 'evaluation' / 'evaluation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
