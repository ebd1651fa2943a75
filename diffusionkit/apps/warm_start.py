"""``train init=<bundle>``: start a new model from another model's weights.

Every weight whose name and shape match is copied (a bundle of which less than half fits is
refused: another net); the rest keep their fresh initialisation,
which is how a trained model gains a new condition (a text prompt's cross-attention starts as
the identity: its output layer is zero-initialised) or a different head. The EMA starts from
the copied weights. What was copied and what is new is printed and written to the run folder.
"""

from __future__ import annotations

from pathlib import Path

import torch

from diffusionkit.bundle import read_run, resolve_checkpoint, subset
from diffusionkit.diffusion.model import DiffusionModel
from diffusionkit.errors import UsageError
from diffusionkit.nets.conditioned_net import upgrade_legacy_names


@torch.no_grad()
def warm_start(model: DiffusionModel, source: str, run_dir: Path) -> str:
    """Copy ``source``'s matching weights into ``model`` (see the module); return the summary."""
    path = resolve_checkpoint(source)
    weights, _, _ = read_run(path, "diffusion")
    given = upgrade_legacy_names(subset(weights, "net"))
    own = model.net.state_dict()
    copied = [name for name, value in given.items() if name in own and own[name].shape == value.shape]
    if len(copied) < len(given) / 2:
        raise UsageError(f"init={source}: only {len(copied)} of its {len(given)} weights fit this model (another "
                         "net or other sizes); train from scratch, or pass a bundle of the same net")
    for name in copied:
        own[name].copy_(given[name].to(own[name].dtype))
    model.reset_ema()
    fresh = sorted(set(own) - set(copied))
    skipped = sorted(name for name in given if name not in copied)
    lines = [f"init={source} ({path}): {len(copied)} of {len(own)} weight tensors copied",
             f"new (freshly initialised): {len(fresh)}", *(f"  {name}" for name in fresh),
             f"in {path.name} but not used (name or shape differs): {len(skipped)}", *(f"  {name}" for name in skipped)]
    (run_dir / "init_report.txt").write_text("\n".join(lines) + "\n")
    return f"{lines[0]}; {len(fresh)} new, {len(skipped)} unused (see {run_dir / 'init_report.txt'})"
