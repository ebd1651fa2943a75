"""The slow part of the contract: a tiny real training run and sampling through the commands."""

from __future__ import annotations

from pathlib import Path

from diffusionkit.commands import run_command

from .checks_media import NO_DATA
from .subject import CheckResult, PluginUnderTest, failed, passed

#: a few steps of a small U-Net: enough to exercise every part of a run, not to learn anything.
TINY_RUN = ["net=unet_small", "net.model_channels=16", "net.attention_levels=[]", "net.channel_mult=[1,2]",
            "data.batch_size=4", "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.log_every_n_steps=1",
            "trainer.limit_val_batches=1", "checkpoint.every_n_train_steps=2", "samples.every_n_steps=2",
            "samples.n=2", "samples.steps=2"]


def check_train_and_sample(subject: PluginUnderTest, overrides: list[str] | None = None) -> list[CheckResult]:
    """``diffusionkit train`` on the plugin's default data (logging samples through ``render``),
    then ``diffusionkit generate`` from the bundle; both must write their files."""
    if subject.main_data is None:
        return failed("train and sample", NO_DATA)
    subject.modality(subject.main_data)  # Blocked (skipped) if another check reported that it cannot be built
    folder = subject.folder("train and sample")
    bundle = Path(run_command("train", [*subject.overrides(subject.main_data), *(overrides or TINY_RUN),
                                        f"out={folder / 'run'}"]))
    samples = sorted((folder / "run" / "samples").glob("*"))
    if not bundle.is_file() or not samples:
        return failed("train and sample", f"train wrote no {'bundle' if samples else 'logged samples'} in {folder}")
    generated = folder / "generated"
    run_command("generate", [f"ckpt={bundle}", "n=2", "steps=2", f"out={generated}"])
    files = sorted(p.name for p in generated.iterdir())
    if "recipe.yaml" not in files or not any(name.startswith("grid") for name in files) or len(files) < 4:
        return failed("train and sample", f"generate wrote only {', '.join(files)}; expected 2 samples, a grid "
                                          f"and recipe.yaml (check save() and save_grid())")
    return passed("train and sample", f"train wrote {bundle.name} and {len(samples)} logged sample file(s); "
                                      f"generate wrote {', '.join(files)}")
