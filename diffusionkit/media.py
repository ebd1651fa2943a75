"""How a plugin's media reach loggers and front ends; the core only calls what the plugin declares.

* :class:`Rendered`: one medium a Modality's ``render`` gives, carrying the :class:`MediaWriter`
  that sends it to a logger's experiment (TensorBoard's ``SummaryWriter`` and others). The core
  calls the writer and skips loggers that cannot show the medium (a CSV logger).
* :class:`SummaryMethod`: a ready writer that calls one ``SummaryWriter`` method, with the
  :class:`Layout` of data it accepts (checked by ``diffusionkit plugins check``).
* :class:`FileWidgets`: the Gradio components (:class:`Widget`) a front end (``diffusionkit studio``)
  shows for the modality's files, named declaratively so that a plugin need not import Gradio.

For example, a plugin whose ``render`` gives a ``uint8 [H, W, 3]`` grid declares
``SummaryMethod("add_image", {"dataformats": "HWC"}, layout=Layout("uint8", 3, channel_axis=-1))``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np


class MediaWriter(ABC):
    """Sends one rendered medium to a logger's experiment; its plugin supplies it."""

    @abstractmethod
    def accepts(self, experiment: Any) -> bool:
        """Whether ``experiment`` (e.g. a ``SummaryWriter``) can show the medium; others are skipped."""

    @abstractmethod
    def write(self, experiment: Any, tag: str, medium: Rendered, step: int) -> None:
        """Log ``medium`` to ``experiment`` under ``tag`` at training step ``step``."""

    def problem(self, medium: Rendered) -> str | None:
        """Why this writer cannot write ``medium`` (one line naming the fix), or None; the default
        finds none. ``diffusionkit plugins check`` reports it."""
        return None


@dataclass(frozen=True)
class Layout:
    """The data a writer accepts: a numpy dtype, a number of axes, optionally the axis of colour
    channels (1, 3 or 4 of them) and the bounds of the values."""

    dtype: str
    ndim: int
    channel_axis: int | None = None
    bounds: tuple[float, float] | None = None

    def problem(self, medium: Rendered) -> str | None:
        """Why ``medium.data`` does not have this layout, or None."""
        data, name = medium.data, f"Rendered('{medium.kind}').data"
        if data.dtype != np.dtype(self.dtype) or data.ndim != self.ndim:
            return f"{name} is {data.dtype} with {data.ndim} axes; expected {self.dtype} with {self.ndim}"
        if self.channel_axis is not None and data.shape[self.channel_axis] not in (1, 3, 4):
            return f"{name} has {data.shape[self.channel_axis]} colour channels; use 1, 3 or 4"
        low, high = self.bounds or (-np.inf, np.inf)
        if self.bounds and not (np.isfinite(data).all() and data.min(initial=low) >= low
                                and data.max(initial=high) <= high):
            return f"{name} must be finite and within [{low:g}, {high:g}]"
        return None


@dataclass(frozen=True)
class SummaryMethod(MediaWriter):
    """A writer that calls ``experiment.<method>(tag, data, step, **options)`` on experiments that
    have the method (TensorBoard's ``SummaryWriter``); ``rate_option`` names the keyword that gets
    the medium's ``rate`` (e.g. ``"sample_rate"``), ``layout`` the data the method accepts."""

    method: str
    options: Mapping[str, Any] = field(default_factory=dict)
    rate_option: str | None = None
    layout: Layout | None = None

    def accepts(self, experiment: Any) -> bool:
        return callable(getattr(experiment, self.method, None))

    def write(self, experiment: Any, tag: str, medium: Rendered, step: int) -> None:
        options = {**self.options, **({self.rate_option: medium.rate} if self.rate_option else {})}
        getattr(experiment, self.method)(tag, medium.data, step, **options)

    def problem(self, medium: Rendered) -> str | None:
        return self.layout.problem(medium) if self.layout else None


@dataclass(frozen=True)
class Rendered:
    """A batch turned into one loggable medium by its plugin's ``render``.

    Args:
        kind: the plugin's name for the medium; a logger tag ends with it when ``render`` gives several.
        data: the medium as a numpy array, in the layout its ``writer`` accepts.
        rate: steps per second along ``time_axis`` (0 for media without one).
        writer: how the medium reaches a logger; without one it is not logged (a warning says so).
        time_axis: the axis of ``data`` that is time, for media with a duration: the contract kit
            checks that longer items give media longer along it.
    """

    kind: str
    data: np.ndarray
    rate: int = 0
    writer: MediaWriter | None = None
    time_axis: int | None = None

    def log(self, experiment: Any, tag: str, step: int) -> bool:
        """Write to ``experiment`` if the writer accepts it; False when skipped."""
        if self.writer is None or not self.writer.accepts(experiment):
            return False
        self.writer.write(experiment, tag, self, step)
        return True


@dataclass(frozen=True)
class Widget:
    """One Gradio component, by class name (``"File"``), with its keyword options; the front end
    builds it (it imports Gradio, the plugin need not)."""

    component: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileWidgets:
    """The widgets a front end (``diffusionkit studio``) shows for a modality's files.

    Args:
        name: names this set of widgets on a page (element ids ``input-<name>``, ``player-<i>-<name>``);
            modalities that declare the same name share the widgets.
        upload: the upload field of an input file.
        player: the read-only player of a result file.
        playable: file suffixes (lower case, with dot) the player plays; a result's first such
            file is played (else its first file is offered as a download).
        viewer: optionally a widget beside the player that shows one more file of the result
            (e.g. the plot of a sound): its first other file with a ``viewable`` suffix. Its
            options should make it read-only (``{"interactive": False}`` where the component has it).
        viewable: the suffixes the viewer shows.
    """

    name: str
    upload: Widget
    player: Widget
    playable: tuple[str, ...] = ()
    viewer: Widget | None = None
    viewable: tuple[str, ...] = ()
