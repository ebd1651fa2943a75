"""A 2-process DDP run on the CPU (gloo) through the command line: one bundle, data sharded,
and every process holding the same EMA weights."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

# The command line, with train._fit wrapped to save each process's EMA weights after training.
# Lightning starts the second process by re-running this script, so the wrapper is in both.
RECORDING_CLI = textwrap.dedent("""
    import sys
    import torch
    import diffusionkit.apps.train as train

    fit = train._fit

    def recording_fit(cfg, module, datamodule, folder, *args):
        trainer = fit(cfg, module, datamodule, folder, *args)
        torch.save(module.model.ema.module.state_dict(), folder / f"ema_rank{trainer.global_rank}.pt")
        return trainer

    train._fit = recording_fit
    from diffusionkit.cli import main

    sys.exit(main(sys.argv[1:]))
""")


def test_two_processes_train_one_model_and_write_one_bundle_job_after_job(tmp_path):
    """Two jobs of a sweep, each a 2-process run: the processes Lightning starts ignore the sweep
    on the command line, and each job forms its own process group."""
    script = tmp_path / "recording_cli.py"
    script.write_text(RECORDING_CLI)
    # 64 toy items: 61 for training; each of 2 processes gets 31 of them, 3 full batches of 8 per epoch
    result = subprocess.run(
        [sys.executable, str(script), "train", "modality=toy", "data=toy_blobs", "data.dataset.num_samples=64",
         "net=unet_small", "net.model_channels=16", "net.attention_levels=[]", "data.batch_size=8",
         "trainer=ddp_cpu", "trainer.max_steps=7", "trainer.val_check_interval=3", "trainer.limit_val_batches=1",
         "checkpoint.every_n_train_steps=3", "samples.every_n_steps=3", "samples.n=2", "samples.steps=2",
         "logger=csv", "-m", "seed=0,1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("model bundle:") == 2  # only the first process of each job reports and writes
    (sweep,) = (tmp_path / "outputs" / "train").iterdir()
    assert sorted(p.relative_to(sweep).as_posix() for p in sweep.glob("**/*.safetensors")) == \
        ["0/model.safetensors", "1/model.safetensors"]
    run = sweep / "0"
    assert (run / ".config.node0.yaml").read_text() == (run / "config.yaml").read_text()  # what process 1 ran
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 7
    # 3 steps per epoch (one process alone would take 7): each process saw half of the data
    assert (run / "checkpoints" / "epoch=1-step=6.ckpt").is_file()
    ema = [torch.load(run / f"ema_rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert ema[0].keys() == ema[1].keys()
    assert all(torch.equal(ema[0][k], ema[1][k]) for k in ema[0])  # updated identically on every process
    bundle = load_file(str(run / "model.safetensors"))
    assert all(torch.equal(bundle[f"net.{k}"], v) for k, v in ema[0].items())
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000003.npy", "step_000006.npy",
                                                                   "step_000007.npy"]
