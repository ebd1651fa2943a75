"""Faults: atomic checkpoint and bundle writes, checkpoints that load without running code, a
diverged (NaN/Inf) run that stops before it spoils the weights, and where ``resume=`` looks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file
from torch import nn

from diffusionkit.apps.run_folder import newest_checkpoint, open_run_folder, resume_checkpoint
from diffusionkit.atomic import atomic_path
from diffusionkit.bundle import FORMAT, save_bundle
from diffusionkit.errors import UsageError
from diffusionkit.training.checkpoint_io import SafeCheckpointIO, load_checkpoint_file
from diffusionkit.training.faults import NonFiniteLossGuard, divergence_message
from diffusionkit.training.processes import RUN_DIR_ENV, shared_run_dir, spawned_run_dir


class Touch:
    """A pickle payload that would create a file while loading."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_writer_dying_halfway_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "last.ckpt"
    path.write_bytes(b"good")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"ha")
            raise RuntimeError("killed")
    assert path.read_bytes() == b"good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_writers_on_two_machines_with_the_same_process_id_use_different_temporaries(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "getpid", lambda: 4242)  # another node of a shared file system can have it too
    path = tmp_path / "latents.safetensors"
    with atomic_path(path) as first, atomic_path(path) as second:
        assert first != second and socket.gethostname() in first.name
        first.write_bytes(b"first")
        second.write_bytes(b"second")
    assert path.read_bytes() == b"first"  # each rename put a whole file in place; the last one stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latents.safetensors"]


def test_a_bundle_write_that_fails_halfway_keeps_the_previous_bundle(tmp_path, monkeypatch):
    path = save_bundle(tmp_path / "model.safetensors", {"net.w": torch.ones(3)}, {"format": FORMAT})

    def dies_halfway(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x00" * 10)
        raise OSError("disk full")

    monkeypatch.setattr("diffusionkit.bundle.save_file", dies_halfway)
    with pytest.raises(OSError):
        save_bundle(path, {"net.w": torch.zeros(3)}, {"format": FORMAT})
    assert torch.equal(load_file(str(path))["net.w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_sigkill_while_checkpoints_are_written_never_truncates_the_file(tmp_path):
    """A process rewrites a 32 MB checkpoint in a loop (nearly all its time is spent writing)
    and is killed at an arbitrary moment: the file must still load and be whole."""
    path = tmp_path / "last.ckpt"
    script = textwrap.dedent(f"""
        import torch
        from diffusionkit.training.checkpoint_io import SafeCheckpointIO
        io, state = SafeCheckpointIO(), torch.arange(8_000_000, dtype=torch.float32)
        for i in range(10_000):
            io.save_checkpoint({{"step": i, "state_dict": {{"w": state + i}}}}, {str(path)!r})
    """)
    writer = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not path.is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.7)  # a few more rewrites, then the kill lands mid-write
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    checkpoint = SafeCheckpointIO().load_checkpoint(path)
    assert torch.equal(checkpoint["state_dict"]["w"], torch.arange(8_000_000, dtype=torch.float32) + checkpoint["step"])


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Touch(marker)}, path)
    for load in (load_checkpoint_file, SafeCheckpointIO().load_checkpoint):
        refusal = f"cannot read checkpoint '{path}' safely: it holds objects other than tensors, which could run code"
        with pytest.raises(UsageError, match=f"{refusal} .*system"):
            load(path)
    assert not marker.exists()


def test_a_truncated_checkpoint_is_named_as_incomplete(tmp_path):
    good, cut = tmp_path / "good.ckpt", tmp_path / "cut.ckpt"
    SafeCheckpointIO().save_checkpoint({"state_dict": {"w": torch.randn(1000)}}, good)
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UsageError, match="cut.ckpt' safely: the file is incomplete or corrupt"):
        load_checkpoint_file(cut)


class Regression(pl.LightningModule):
    """Fits y = 2x; from step ``bad_from`` (counted from 1) on, the loss is NaN."""

    def __init__(self, bad_from: int) -> None:
        super().__init__()
        self.layer, self.bad_from, self.history = nn.Linear(1, 1), bad_from, []

    def training_step(self, batch, batch_idx):
        loss = (self.layer(batch[0]) - 2 * batch[0]).square().mean()
        return loss * float("nan") if self.global_step + 1 >= self.bad_from else loss

    def on_train_batch_end(self, *args) -> None:
        self.history.append(self.layer.weight.detach().clone())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=0.1)


def test_a_nan_loss_stops_training_before_it_changes_any_weight():
    torch.manual_seed(0)
    module, guard = Regression(bad_from=4), NonFiniteLossGuard()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(64, 1)), batch_size=4)
    trainer = pl.Trainer(max_steps=10, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[guard])
    trainer.fit(module, data)
    assert guard.diverged_at == 4 and guard.bad_loss != guard.bad_loss  # nan
    assert len(module.history) == 4  # stopped after the bad batch
    assert torch.equal(module.history[-1], module.history[-2])  # the bad step left the weights alone
    assert not torch.equal(module.history[-2], module.history[-3])  # the good steps did train
    assert torch.isfinite(module.layer.weight).all()


def test_the_divergence_message_is_one_line_with_the_checkpoint_and_the_fix():
    message = divergence_message(1235, float("inf"), "run/checkpoints/last.ckpt", 3e-4)
    assert "\n" not in message
    assert message.startswith("training diverged: the loss was inf in step 1235")
    assert "the last good checkpoint is 'run/checkpoints/last.ckpt'" in message
    assert "Lower optim.optimizer.lr (now 0.0003)" in message


def config(**values):
    return OmegaConf.create({"out": None, "resume": None, **values})


def test_resume_true_needs_out_and_a_checkpoint(tmp_path):
    with pytest.raises(UsageError, match="resume=true continues the run in out=; give out="):
        resume_checkpoint(config(resume=True))
    with pytest.raises(UsageError, match=f"resume=true: no checkpoint in '{tmp_path}/checkpoints'"):
        resume_checkpoint(config(resume=True, out=str(tmp_path)))


def test_resume_takes_the_newest_complete_checkpoint_of_a_run(tmp_path):
    io = SafeCheckpointIO()
    io.save_checkpoint({"global_step": 10, "state_dict": {}}, tmp_path / "checkpoints" / "last.ckpt")
    time.sleep(0.01)
    io.save_checkpoint({"global_step": 15, "state_dict": {}},
                       tmp_path / "checkpoints" / "epoch=0-step=15.ckpt")  # killed before last
    assert newest_checkpoint(tmp_path).name == "epoch=0-step=15.ckpt"
    assert resume_checkpoint(config(resume=True, out=str(tmp_path))).name == "epoch=0-step=15.ckpt"
    assert resume_checkpoint(config(resume=str(tmp_path))).name == "epoch=0-step=15.ckpt"  # a run folder
    io.save_checkpoint({"global_step": 15, "state_dict": {}}, tmp_path / "checkpoints" / "last.ckpt")
    assert resume_checkpoint(config(resume="auto", out=str(tmp_path))).name == "last.ckpt"


def test_resume_auto_starts_fresh_without_a_checkpoint_but_never_over_a_finished_model(tmp_path):
    assert resume_checkpoint(config(resume="auto", out=str(tmp_path / "new"))) is None
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "model.safetensors").write_bytes(b"x")
    with pytest.raises(UsageError, match="holds a finished model but no checkpoint"):
        resume_checkpoint(config(resume="auto", out=str(tmp_path / "done")))


def test_resuming_from_a_crafted_checkpoint_is_refused_before_anything_starts(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.ckpt"
    torch.save({"payload": Touch(marker)}, path)
    with pytest.raises(UsageError, match="safely"):
        resume_checkpoint(config(resume=str(path)))
    assert not marker.exists()


def test_resuming_from_a_plain_weights_file_is_one_line(tmp_path, capsys):
    from diffusionkit.cli import main

    weights = tmp_path / "weights.pt"
    torch.save(nn.Linear(2, 2).state_dict(), weights)
    with pytest.raises(UsageError, match=f"'{weights}' is not a Lightning checkpoint .*pass resume="):
        resume_checkpoint(config(resume=str(weights)))
    assert main(["train", "modality=toy", "data=toy_blobs", f"resume={weights}", f"out={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"diffusionkit train: error: '{weights}' is not a Lightning checkpoint")
    assert "\n" not in err and not (tmp_path / "run").exists()


def test_processes_of_a_cluster_launch_need_a_shared_out(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(UsageError, match="started by a cluster launcher; give out="):
        open_run_folder(config(), None)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("written by rank 0")
    assert open_run_folder(config(out=str(tmp_path / "run")), None) == tmp_path / "run"  # not refused as non-empty


def test_processes_lightning_starts_inherit_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert open_run_folder(config(out="elsewhere"), None) == tmp_path


def test_each_node_writes_the_config_the_processes_it_starts_read(tmp_path, monkeypatch):
    """Several nodes: a later node's first process does not own the run (it writes no
    config.yaml), yet the processes Lightning starts on that node need the resolved config before
    the first node has necessarily written anything."""
    from diffusionkit.apps import train

    for name in ("RANK", "LOCAL_RANK", "GROUP_RANK", "SLURM_PROCID", "SLURM_LOCALID", RUN_DIR_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NODE_RANK", "1")  # the process started on the second node
    train._write_config(OmegaConf.create({"seed": 3}), tmp_path, node_processes=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".config.node1.yaml"]
    read = []
    monkeypatch.setattr(train, "run", read.append)
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    monkeypatch.setenv("LOCAL_RANK", "1")  # one Lightning starts there (it inherits NODE_RANK)
    train.run_spawned(spawned_run_dir())
    assert read == [{"seed": 3}]
    monkeypatch.setenv("NODE_RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    train._write_config(OmegaConf.create({"seed": 3}), tmp_path / "one", node_processes=1)
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["config.yaml"]  # one process: the record only


def test_the_launch_variables_are_restored_after_fit(tmp_path, monkeypatch):
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    with shared_run_dir(tmp_path):
        assert os.environ[RUN_DIR_ENV] == str(tmp_path.resolve())
        os.environ["LOCAL_RANK"] = "0"  # Lightning's launcher sets this in the first process
    assert RUN_DIR_ENV not in os.environ and "LOCAL_RANK" not in os.environ  # the next run launches afresh


def test_resume_from_a_truncated_checkpoint_is_one_line_from_the_command(tmp_path, capsys):
    from diffusionkit.cli import main

    good, cut = tmp_path / "good.ckpt", tmp_path / "cut.ckpt"
    SafeCheckpointIO().save_checkpoint({"state_dict": {"w": torch.randn(1000)}}, good)
    cut.write_bytes(good.read_bytes()[:-200])
    assert main(["train", "modality=toy", "data=toy_blobs", f"resume={cut}", f"out={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"diffusionkit train: error: cannot read checkpoint '{cut}' safely: the file is incomplete")
    assert "\n" not in err and not (tmp_path / "run").exists()


def test_an_atomically_written_bundle_gets_a_new_files_permissions_not_the_temporary_files(tmp_path):
    from diffusionkit.atomic import current_umask

    umask = os.umask(0o022)
    os.umask(umask)
    assert current_umask() == umask
    path = save_bundle(tmp_path / "model.safetensors", {"w": torch.zeros(2)}, {"format": FORMAT})
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # safetensors writes 0600 on its own
    with atomic_path(tmp_path / "private.txt") as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
    assert (tmp_path / "private.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o640)  # a file the user restricted keeps its mode when it is written again
    save_bundle(path, {"w": torch.ones(2)}, {"format": FORMAT})
    assert path.stat().st_mode & 0o777 == 0o640
