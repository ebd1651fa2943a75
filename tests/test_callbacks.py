"""Media reach TensorBoard-style loggers through SummaryWriter's add_<kind> methods."""

import io

import numpy as np

from diffusionkit.modality import Rendered
from diffusionkit.training.callbacks import log_rendered


class Writer:
    def __init__(self):
        self.calls = []

    def add_image(self, tag, data, step, **kw):
        self.calls.append(("image", tag, tuple(data.shape), step, kw))

    def add_audio(self, tag, data, step, **kw):
        self.calls.append(("audio", tag, tuple(data.shape), step, kw))

    def add_video(self, tag, data, step, **kw):
        self.calls.append(("video", tag, tuple(data.shape), step, kw))


class Logger:
    def __init__(self, experiment):
        self.experiment = experiment


def test_each_medium_goes_to_its_writer_method_with_its_rate():
    writer = Writer()
    log_rendered(Logger(writer), "a", Rendered("image", np.zeros((4, 6, 3), np.uint8)), 3)
    log_rendered(Logger(writer), "b", Rendered("audio", np.zeros(100, np.float32), rate=16000), 4)
    assert writer.calls == [
        ("image", "a", (4, 6, 3), 3, {"dataformats": "HWC"}),
        ("audio", "b", (1, 100), 4, {"sample_rate": 16000}),
    ]


def test_video_reaches_tensorboard_as_an_animated_gif_without_moviepy(tmp_path):
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    clips = np.zeros((4, 5, 1, 8, 6), np.uint8)
    clips[:] = (np.arange(5) * 40).reshape(1, 5, 1, 1, 1)  # frame t has grey level 40 t
    writer = SummaryWriter(str(tmp_path))
    log_rendered(Logger(writer), "clips", Rendered("video", clips, rate=10), 7)
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    (image,) = events.Images("clips")
    assert image.step == 7 and (image.width, image.height) == (2 * 6 + 3, 2 * 8 + 3)  # 2x2 tiles, 1-px gutters
    gif = Image.open(io.BytesIO(image.encoded_image_string))
    assert gif.format == "GIF" and gif.n_frames == 5 and gif.info["duration"] == 100
    gif.seek(2)
    assert np.asarray(gif.convert("L"))[1, 1] == 80


def test_loggers_without_media_support_are_skipped():
    log_rendered(Logger(object()), "a", Rendered("image", np.zeros((4, 6, 3), np.uint8)), 0)
    log_rendered(object(), "a", Rendered("image", np.zeros((4, 6, 3), np.uint8)), 0)
