"""Media reach TensorBoard-style loggers through SummaryWriter's add_<kind> methods."""

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
    log_rendered(Logger(writer), "c", Rendered("video", np.zeros((2, 5, 3, 8, 8), np.uint8), rate=8), 5)
    assert writer.calls == [
        ("image", "a", (4, 6, 3), 3, {"dataformats": "HWC"}),
        ("audio", "b", (1, 100), 4, {"sample_rate": 16000}),
        ("video", "c", (2, 5, 3, 8, 8), 5, {"fps": 8}),
    ]


def test_loggers_without_media_support_are_skipped():
    log_rendered(Logger(object()), "a", Rendered("image", np.zeros((4, 6, 3), np.uint8)), 0)
    log_rendered(object(), "a", Rendered("image", np.zeros((4, 6, 3), np.uint8)), 0)
