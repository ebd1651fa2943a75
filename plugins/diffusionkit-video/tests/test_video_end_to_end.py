"""A tiny real video run through the command layer: train on sprites -> bundle -> generate,
animate a still frame and round-trip a file (about 10 s on one busy CPU core)."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from diffusionkit.commands import run_command

pytestmark = pytest.mark.slow

TINY = ["net=unet_factorized", "net.model_channels=16", "net.num_res_blocks=1", "net.attention_levels=[1]",
        "net.channel_mult=[1,2]", "modality.frames=8", "modality.size=16", "data.dataset.per_class=4",
        "data.batch_size=8", "trainer.max_steps=4", "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
        "checkpoint.every_n_train_steps=2", "samples.every_n_steps=2", "samples.n=2", "samples.steps=2"]


@pytest.fixture(scope="module")
def sprites_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("sprites") / "run"
    return run, run_command("train", ["modality=video", "data=sprites", *TINY, f"out={run}"])


def _frames(path):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_training_writes_a_bundle_and_sample_videos(sprites_run):
    run, bundle = sprites_run
    assert bundle == run / "model.safetensors" and bundle.is_file()
    for step in ("step_000002", "step_000004"):
        frames = _frames(run / "samples" / f"{step}.mp4")
        assert len(frames) == 8 and frames[0].shape == (16 + 4, 2 * 18 + 2, 3)  # 2 clips side by side
        assert (run / "samples" / f"{step}.gif").is_file() and (run / "samples" / f"{step}.png").is_file()


def test_generate_and_animate_a_still(sprites_run, tmp_path):
    _, bundle = sprites_run
    out = run_command("generate", [f"ckpt={bundle}", "label=circle", "n=2", "steps=2", f"out={tmp_path / 'gen'}"])
    assert len(_frames(out / "000_circle.mp4")) == 8
    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(tmp_path / "frame.png")
    out = run_command("animate", [f"ckpt={bundle}", f"input={tmp_path / 'frame.png'}", "n=2", "steps=2",
                                  f"out={tmp_path / 'anim'}"])
    first = _frames(out / "animated_000.mp4")[0]
    assert len(_frames(out / "animated_000.mp4")) == 8
    assert abs(float(first.mean()) - 200) < 8  # the kept first frame is the still


def test_roundtrip_command_on_a_video(tmp_path):
    frames = np.zeros((10, 20, 20, 3), dtype=np.uint8)
    for i in range(10):
        frames[i, :, 2 * i:2 * i + 4] = 255
    from diffusionkit_video.video_write import write_mp4

    source = write_mp4(frames, tmp_path / "bar.mp4", 8)
    metrics = run_command("roundtrip", ["modality=video", "modality.channels=1", "modality.size=16",
                                        "modality.frames=8", f"input={source}", f"out={tmp_path / 'rt'}"])
    assert metrics["psnr_db"] > 60 and metrics["mp4_psnr_db"] > 25
