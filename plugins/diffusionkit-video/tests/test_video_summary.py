"""The video plugin logs its clips to TensorBoard as an animated GIF (no moviepy), through the
writer its Rendered media carry."""

import io

import numpy as np
import torch

from diffusionkit.training.callbacks import log_rendered
from diffusionkit_video.modality import VideoModality


class Logger:
    def __init__(self, experiment):
        self.experiment = experiment


def test_video_reaches_tensorboard_as_an_animated_gif_without_moviepy(tmp_path):
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    modality = VideoModality(channels=1, frames=5, size=(8, 6), fps=10)
    batch = (torch.arange(5) * 40 / 127.5 - 1).reshape(1, 1, 5, 1, 1).expand(4, 1, 5, 8, 6)  # frame t: grey 40 t
    clips, _ = modality.render(batch)
    writer = SummaryWriter(str(tmp_path))
    log_rendered(Logger(writer), "clips", clips, 7)
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    (image,) = events.Images("clips")
    assert image.step == 7 and (image.width, image.height) == (2 * 6 + 3, 2 * 8 + 3)  # 2x2 tiles, 1-px gutters
    gif = Image.open(io.BytesIO(image.encoded_image_string))
    assert gif.format == "GIF" and gif.n_frames == 5 and gif.info["duration"] == 100
    gif.seek(2)
    assert np.asarray(gif.convert("L"))[1, 1] == 80


def test_loggers_without_a_file_writer_are_skipped():
    clips, _ = VideoModality(channels=1, frames=2, size=8).render(torch.zeros(1, 1, 2, 8, 8))
    assert clips.log(object(), "clips", 0) is False
    assert clips.writer.problem(clips) is None
    bad = type(clips)("video", clips.data[0], clips.rate, clips.writer, time_axis=0)
    assert clips.writer.problem(bad) == "Rendered('video').data is uint8 [2, 3, 8, 8]; GifSummary writes uint8 " \
                                        "[N, T, 1 | 3, H, W]"
