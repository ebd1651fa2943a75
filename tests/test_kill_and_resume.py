"""A training run killed at an arbitrary moment (SIGKILL) continues with ``resume=true``; a run
whose loss turns NaN stops with one line and keeps its last good checkpoint."""

from __future__ import annotations

import csv
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from diffusionkit.bundle import load_model
from diffusionkit.cli import main
from diffusionkit.training.diffusion_module import DiffusionModule

pytestmark = pytest.mark.slow

TINY = ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16", "net.attention_levels=[]",
        "data.batch_size=16", "data.dataset.num_samples=1024", "trainer.val_check_interval=1000",
        "trainer.limit_val_batches=1",
        "samples.every_n_steps=0", "samples.n=2", "samples.steps=2", "logger=csv", "trainer.log_every_n_steps=1"]
EVERY = 4  # checkpoint interval (steps)


def steps_of(folder) -> list[int]:
    return sorted(int(m.group(1)) for p in folder.glob("*.ckpt") if (m := re.search(r"step=(\d+)", p.name)))


def test_a_killed_run_resumes_from_its_newest_checkpoint_and_its_loss_curve_continues(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "diffusionkit.cli", "train", *TINY, f"out={run}",
               f"checkpoint.every_n_train_steps={EVERY}"]
    training = subprocess.Popen([*command, "trainer.max_steps=100000"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(steps_of(run / "checkpoints")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        training.send_signal(signal.SIGKILL)
        training.wait()
    saved = steps_of(run / "checkpoints")[-1]  # the newest checkpoint the killed run completed
    assert saved >= 2 * EVERY
    final = saved + 2 * EVERY
    result = subprocess.run([*command, f"trainer.max_steps={final}", "resume=true"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == final
    with open(run / "csv" / "metrics.csv", newline="") as f:
        logged = [(int(row["step"]), float(row["train/loss"])) for row in csv.DictReader(f) if row["train/loss"]]
    steps = [step for step, _ in logged]
    # one curve: the killed run's steps up to its checkpoint, then the rest, each once, in order (the row of
    # the step that wrote the checkpoint is logged just after it, so a kill in between may take that row)
    assert steps == sorted(set(steps)) and steps[-1] == final - 1
    assert set(range(final)) - set(steps) <= {saved - 1}
    before = [loss for step, loss in logged if saved - EVERY <= step < saved]
    after = [loss for step, loss in logged if saved <= step < saved + EVERY]
    first = [loss for step, loss in logged if step < EVERY]
    assert sum(after) / len(after) < 1.5 * sum(before) / len(before)  # continues, not from scratch
    assert sum(after) / len(after) < sum(first) / len(first)
    model = load_model(run / "model.safetensors")
    assert all(torch.isfinite(p).all() for p in model.module.net.parameters())


def test_a_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    train_step = DiffusionModule.training_step

    def nan_from_step_7(self, batch, batch_idx):
        loss = train_step(self, batch, batch_idx)
        return loss * float("nan") if self.global_step >= 6 else loss

    monkeypatch.setattr(DiffusionModule, "training_step", nan_from_step_7)
    run = tmp_path / "run"
    assert main(["train", *TINY, f"out={run}", "checkpoint.every_n_train_steps=3", "trainer.max_steps=20"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("diffusionkit train: error: training diverged: the loss was nan in step 7, so training "
                          "stopped before that step changed the weights and wrote no bundle; the last good "
                          f"checkpoint is '{run / 'checkpoints'}")
    assert not (run / "model.safetensors").exists()
    good = torch.load(run / "checkpoints" / "epoch=0-step=6.ckpt", weights_only=True)["state_dict"]
    kept = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert kept["global_step"] <= 7 and steps_of(run / "checkpoints")[-1] == 6
    assert all(torch.equal(kept["state_dict"][k], v) for k, v in good.items())  # the good weights, untouched
    assert all(torch.isfinite(v).all() for v in good.values() if v.is_floating_point())
