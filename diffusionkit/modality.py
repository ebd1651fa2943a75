"""The plugin contract: what a modality tells the core about its media.

A plugin subclasses :class:`Modality` (and optionally :class:`ConcatCondition`) and
declares it under the entry-point group ``diffusionkit.plugins``. The core never imports a
plugin; it builds the plugin's classes from ``_target_`` keys in the plugin's own configs.

Conventions
-----------
* Model space: ``[channels, *spatial]`` per item, ``[batch, channels, *spatial]`` per batch,
  values roughly in ``[-1, 1]``.
* Datasets yield dicts: ``{"x": Tensor[C, *spatial], "label": int}``, optionally with a
  ``"caption": str`` describing the item in words (what a text-conditioned model trains on),
  and expose ``classes: list[str]`` (class names, index = label).
* Every file-facing method raises :class:`MediaError` with one line that names the file and
  what is wrong.
"""

from __future__ import annotations

import os
import stat
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Sequence

import torch
from torch import Tensor

from diffusionkit.media import FileWidgets, Rendered
from diffusionkit.nets.resampling import downsample
from diffusionkit.prompt_checks import PromptCheck

__all__ = ["CONTRACT_VERSION", "ConcatCondition", "DataUnavailable", "FileWidgets", "MediaError", "Modality",
           "Rendered", "check_file", "file_problem", "limit_error"]

#: The version of this contract. A plugin states the version it was written for as
#: ``DIFFUSIONKIT_CONTRACT = <int>`` in its package's ``__init__.py`` (read without importing
#: it; a plugin that states none targets version 1). Discovery refuses other versions with a
#: clear reason. The number changes only when a change breaks existing plugins.
CONTRACT_VERSION = 1


class MediaError(ValueError):
    """A media file or input that cannot be used; its message is one line for the user."""


class DataUnavailable(MediaError):
    """The data a dataset reads is not on this machine (a system package, a folder the user has
    not made yet); the message says how to get it. ``plugins check`` skips such a data option
    instead of failing the plugin, and uses another for its media checks."""


_SPECIAL_FILES = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a media file (missing, a directory, not a regular file,
    empty, unreadable), or None when it can. Only ``stat`` is used, so a named pipe or a device
    is refused without being opened (opening a FIFO would wait for a writer forever)."""
    try:
        info = Path(path).stat()
    except FileNotFoundError:
        return "no such file"
    except PermissionError:
        return "permission denied"
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        return getattr(exc, "strerror", None) or "not a valid file path"
    if stat.S_ISDIR(info.st_mode):
        return "it is a directory"
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _SPECIAL_FILES if test(info.st_mode)), "a special file")
        return f"it is {kind}, not a regular file; copy its data into a regular file"
    if info.st_size == 0:
        return "the file is empty (0 bytes)"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def check_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path if :func:`file_problem` finds nothing wrong with it, else a MediaError
    ``cannot read <what> '<path>': <problem>``. Plugins call it before opening a file."""
    path = Path(path)
    problem = file_problem(path)
    if problem is not None:
        raise MediaError(f"cannot read {what} '{path}': {problem}")
    return path


def media_files(folder: str | Path, extensions: Iterable[str]) -> list[Path]:
    """The files under ``folder`` (sub-folders included, linked ones too, each real folder once)
    whose suffix is one of ``extensions`` (any case), sorted; hidden files and folders (``.name``)
    are left out."""
    root, wanted = Path(folder), {suffix.lower() for suffix in extensions}
    found, seen = [], set()
    for here, folders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:  # a link back up the tree, or a second link to one folder
            folders.clear()
            continue
        seen.add(real)
        folders[:] = [name for name in folders if not name.startswith(".")]
        found += [Path(here) / name for name in files
                  if not name.startswith(".") and Path(name).suffix.lower() in wanted]
    return sorted(found)


def limit_error(path: str | Path, what: str, found: str, option: str, limit: object, unit: str = "") -> MediaError:
    """The one-line refusal of a file over one of its modality's limits: what was found, the
    limit (a modality option, e.g. ``max_seconds``) and how to raise it."""
    value = f"<{unit}>" if unit else "<value>"
    return MediaError(f"cannot read {what} '{path}': {found} (limit: {option}={limit}); if the file is right, "
                      f"raise the limit (modality.{option}={value} for train, {option}={value} for other commands)")


class Modality(ABC):
    """One kind of media: its model-space shape, file I/O and rendering.

    Args:
        channels: channels of a model-space item.
        spatial_size: the model-space spatial extent; its length is the spatial rank
            (1: sequences such as waveforms, 2: images and spectrograms, 3: video).
    """

    #: file name suffixes (lower case, with dot) that :meth:`load` reads, used by the
    #: core's folder dataset to collect a user's files.
    file_extensions: ClassVar[tuple[str, ...]] = ()
    #: which spatial axis is time (an index into ``spatial_size``), or None. Region edits
    #: (``inpaint``, ``extend``) act along it; without one they act along the last axis.
    time_axis: ClassVar[int | None] = None
    #: whether each step along :attr:`time_axis` is an item in its own right, one that a
    #: classifier of rank ``spatial_rank - 1`` can judge (each step of a clip is a still):
    #: ``diffusionkit evaluate per_step=auto`` then also judges generated items step by step.
    steps_are_items: ClassVar[bool] = False
    #: the widgets a front end (``diffusionkit studio``) shows for this modality's files: upload
    #: fields, players and the suffixes they play. None gives plain file fields.
    file_widgets: ClassVar[FileWidgets | None] = None

    def __init__(self, channels: int, spatial_size: Sequence[int]) -> None:
        if channels < 1 or not spatial_size or min(spatial_size) < 1:
            raise ValueError(f"{type(self).__name__}: channels and every spatial size must be >= 1")
        self.channels = int(channels)
        self.spatial_size = tuple(int(s) for s in spatial_size)

    @property
    def spatial_rank(self) -> int:
        """Number of spatial axes (1, 2 or 3): the core builds convolutions of this rank."""
        return len(self.spatial_size)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one model-space item: ``(channels, *spatial_size)``."""
        return (self.channels, *self.spatial_size)

    @property
    def space(self) -> tuple[Any, ...]:
        """What identifies the model space a model is trained in: :attr:`shape` by default. A
        modality whose options change the mapping from files to model space without changing its
        shape (a codec's frequency scale, say) adds them, so that a sampling command refuses such an
        option under a trained model instead of feeding it items from another space."""
        return self.shape

    @abstractmethod
    def load(self, path: str | Path) -> Tensor:
        """Read a media file into model space, shape :attr:`shape`; raise MediaError if unusable."""

    def read_notes(self, path: str | Path) -> list[str]:
        """What a user should know about how :meth:`load` reads the file at ``path`` (e.g. that
        only part of it is used), one line each; none by default. Commands print them beside the
        input they read (:func:`~diffusionkit.plugin_calls.read_media`)."""
        return []

    def load_items(self, path: str | Path) -> list[Tensor]:
        """Every model-space item a file holds, for the folder dataset: by default one
        (:meth:`load`); a long recording or video may give several consecutive clips."""
        return [self.load(path)]

    @abstractmethod
    def save(self, x: Tensor, stem: str | Path) -> list[Path]:
        """Write one model-space item as media file(s) named ``stem`` + suffix; return the paths,
        the first a file :meth:`load` reads. ``x`` may be longer than :attr:`shape` along
        :attr:`time_axis` (``extend`` makes such items): write every step, never crop to ``shape``."""

    @abstractmethod
    def save_grid(self, batch: Tensor, stem: str | Path) -> list[Path]:
        """Write a batch as one overview file (e.g. an image grid); return the paths. Like
        :meth:`save`, it shows items longer along :attr:`time_axis` in full."""

    @abstractmethod
    def render(self, batch: Tensor) -> Rendered | Sequence[Rendered]:
        """Turn a model-space batch into media for loggers (TensorBoard and others): one
        medium, or several (e.g. the sound and a picture of its spectrogram), each carrying the
        :class:`~diffusionkit.media.MediaWriter` that logs it (see :mod:`diffusionkit.media`).
        Items longer along :attr:`time_axis` give longer sound or video, and pictures of every step."""

    def envelope(self, batch: Tensor) -> Tensor | None:
        """Energy over time ``[B, steps]`` of a model-space batch, for structure metrics (how well
        a conversion keeps its source's envelope); None (the default) when there is no time axis."""
        return None

    def roundtrip(self, path: str | Path, stem: str | Path) -> dict[str, float]:
        """Read ``path`` into model space, write it back as ``stem`` + suffix and measure what was
        lost. The default reloads the written file and compares model-space values; plugins
        override it with the error of their own representation (e.g. a waveform SNR).

        Returns:
            a non-empty dict of measures by name, each a finite Python ``float`` (convert numpy
            and torch numbers with ``float()``; leave out a measure rather than give NaN), e.g.
            ``{"snr_db": 31.2, "encode_ms": 4.1}``; ``diffusionkit roundtrip`` reports them.
        """
        x = self.load(path)
        written = self.save(x, stem)
        mse = float((self.load(written[0]) - x).square().mean())
        return {"model_space_rmse": mse ** 0.5,
                "psnr_db": float(10 * torch.log10(torch.tensor(4.0) / max(mse, 1e-20)))}

    def augmentations(self) -> dict[str, Callable[..., Tensor]]:
        """Named transforms of one model-space item for data augmentation (``augment=default``
        applies them on the fly while training): each ``transform(x, generator, **options)``
        returns a changed copy of ``x`` ``[C, *spatial]`` of the same shape, draws its randomness
        only from ``generator`` and has a default strength that keeps the item's class (e.g.
        ``{"flip": ..., "gain": ...}``). The default offers none."""
        return {}

    def low_resolution(self, batch: Tensor, factors: Sequence[int]) -> Tensor:
        """``batch [B, C, *spatial]`` at a resolution ``factors`` times lower along each spatial
        axis: what a cascade's super-resolution stage learns to undo
        (:class:`~diffusionkit.nets.low_resolution.LowResolution`). The default averages each
        block of ``factors``; a modality may degrade as its media do (e.g. a lower sample rate)."""
        return downsample(batch, factors)

    def describe(self, batch: Tensor) -> list[dict[str, float | str]]:
        """Measured descriptors of each model-space item of ``batch`` (e.g. a spectral centroid,
        a drawn colour), for judging prompt adherence (:mod:`diffusionkit.prompt_checks`). The
        default measures nothing."""
        return [{} for _ in range(len(batch))]

    def prompt_checks(self) -> list[PromptCheck]:
        """The prompt checks ``diffusionkit evaluate prompts=true`` runs on a text-conditioned
        model of this modality (:mod:`diffusionkit.prompt_checks`); the default has none."""
        return []

    def reconstruction_loss(self, reconstruction: Tensor, target: Tensor) -> Tensor | None:
        """A modality-specific term the autoencoder stage adds to its reconstruction loss.

        Both arguments are model-space batches ``[B, C, *spatial]``; return a scalar (e.g. a
        multi-resolution spectral loss for audio), or None for no extra term (the default).
        """
        return None


class ConcatCondition(ABC):
    """A conditioning signal concatenated to the denoiser's input channels.

    It is derived from clean model-space data during training (e.g. a sketch from an image)
    and read from a user's file at sampling time (``diffusionkit generate ... <input_name>=FILE``).
    Both return tensors at the data's spatial size; for a latent model the core resizes them to
    the latent grid. The condition is never dropped: classifier-free guidance acts on class
    labels, and both of its branches see the same condition.
    """

    #: how many channels the condition adds to the network input.
    channels: int
    #: the command-line key that names a conditioning file, e.g. ``"sketch"``.
    input_name: str

    @abstractmethod
    def from_data(self, x: Tensor) -> Tensor:
        """Derive the condition ``[B, channels, *spatial]`` from a clean batch ``[B, C, *spatial]``."""

    @abstractmethod
    def load(self, path: str | Path, modality: Modality) -> Tensor:
        """Read a user's conditioning file into ``[channels, *spatial]``; raise MediaError if unusable."""
