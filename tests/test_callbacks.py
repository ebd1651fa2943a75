"""Media reach loggers through the writer their plugin gave them; the core names no medium."""

import warnings

import numpy as np
import pytest

from diffusionkit.media import Layout, SummaryMethod
from diffusionkit.modality import Rendered
from diffusionkit.training import callbacks
from diffusionkit.training.callbacks import log_rendered

PICTURE = SummaryMethod("add_image", {"dataformats": "HWC"}, layout=Layout("uint8", 3, channel_axis=-1))
SOUND = SummaryMethod("add_audio", rate_option="sample_rate", layout=Layout("float32", 1, bounds=(-1.0, 1.0)))


class Writer:
    def __init__(self):
        self.calls = []

    def add_image(self, tag, data, step, **kw):
        self.calls.append(("image", tag, tuple(data.shape), step, kw))

    def add_audio(self, tag, data, step, **kw):
        self.calls.append(("audio", tag, tuple(data.shape), step, kw))


class Logger:
    def __init__(self, experiment):
        self.experiment = experiment


def test_each_medium_goes_to_its_writer_method_with_its_rate():
    writer = Writer()
    log_rendered(Logger(writer), "a", Rendered("image", np.zeros((4, 6, 3), np.uint8), writer=PICTURE), 3)
    log_rendered(Logger(writer), "b", Rendered("audio", np.zeros(100, np.float32), 16000, SOUND, time_axis=0), 4)
    assert writer.calls == [
        ("image", "a", (4, 6, 3), 3, {"dataformats": "HWC"}),
        ("audio", "b", (100,), 4, {"sample_rate": 16000}),
    ]


def test_loggers_without_media_support_are_skipped():
    medium = Rendered("image", np.zeros((4, 6, 3), np.uint8), writer=PICTURE)
    log_rendered(Logger(object()), "a", medium, 0)
    log_rendered(object(), "a", medium, 0)
    assert medium.log(object(), "a", 0) is False and medium.log(Writer(), "a", 0) is True


def test_media_without_a_writer_are_skipped_with_one_warning(monkeypatch):
    monkeypatch.setattr(callbacks, "_UNWRITTEN", set())
    writer = Writer()
    legacy = Rendered("image", np.zeros((4, 6, 3), np.uint8))  # a plugin written before writers existed
    with pytest.warns(UserWarning, match=r"rendered 'image' media have no writer, so no logger shows them"):
        log_rendered(Logger(writer), "a", legacy, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_rendered(Logger(writer), "a", legacy, 1)  # once per kind
    assert writer.calls == []
