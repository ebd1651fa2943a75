"""The plugin under test: its discovery record, composed configs, modality and datasets, built
once and shared by every contract check (``diffusionkit.testing.checks``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor

from diffusionkit.config import compose_config
from diffusionkit.errors import UsageError
from diffusionkit.modality import DataUnavailable, Modality
from diffusionkit.plugins import PluginInfo, discover

from .failures import Blocked, describe_error

T = TypeVar("T")


@dataclass(frozen=True)
class CheckResult:
    """One finding: what was checked, whether it passed, and what was seen (on failure: what is
    wrong and how to fix it, in words for the plugin's author)."""

    check: str
    passed: bool
    detail: str
    #: not run: it does not apply, or it needs something whose failure another finding reports.
    skipped: bool = False

    @property
    def failed(self) -> bool:
        return not (self.passed or self.skipped)

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "SKIP" if self.skipped else "FAIL"


def passed(check: str, detail: str) -> list[CheckResult]:
    return [CheckResult(check, True, detail)]


def failed(check: str, detail: str) -> list[CheckResult]:
    return [CheckResult(check, False, detail)]


def skipped(check: str, detail: str) -> list[CheckResult]:
    return [CheckResult(check, False, detail, skipped=True)]


@dataclass
class ContractSettings:
    """What a plugin's own tests may tune; ``diffusionkit plugins check`` uses the defaults.

    Attributes:
        data_overrides: extra overrides per data option, to keep tests small
            (``{"drums": ["data.dataset.per_class=2"]}``).
        value_slack: how far dataset items may go beyond [-1, 1].
        roundtrip_rmse: the largest model-space RMSE allowed between ``load(file)`` and
            ``load(save(load(file)))``.
        bad_files: extra unreadable examples, file name -> content; each must raise MediaError.
        write_sample: writes a real media file at a given stem (any suffix) by other means than the
            plugin's ``save``, and returns its path; None: a dataset item saved by the plugin.
        items_per_dataset: how many items of each dataset are inspected.
    """

    data_overrides: dict[str, list[str]] = field(default_factory=dict)
    value_slack: float = 0.1
    roundtrip_rmse: float = 0.1
    bad_files: dict[str, bytes] = field(default_factory=dict)
    write_sample: Callable[[Path], Path] | None = None
    items_per_dataset: int = 4


def installed_plugin(name: str) -> PluginInfo:
    """The discovery record of an installed plugin (compatible or not); UsageError if none."""
    plugins = {p.name: p for p in discover(include_incompatible=True)}
    if name not in plugins:
        known = ", ".join(sorted(plugins)) or "none"
        raise UsageError(f"no plugin '{name}' is installed (installed: {known}); "
                         f"install yours first: pip install -e <plugin folder>")
    return plugins[name]


class PluginUnderTest:
    """An installed plugin, its configs composed through ``diffusionkit train``'s config.

    Args:
        name: the plugin's entry-point name.
        workdir: a folder for the files the checks write.
        settings: the plugin's tuning of the checks.
    """

    def __init__(self, name: str, workdir: Path, settings: ContractSettings | None = None) -> None:
        self.info = installed_plugin(name)
        self.workdir = Path(workdir)
        self.settings = settings or ContractSettings()
        self._built: dict[tuple[str | None, ...], Any] = {}
        self._failures: dict[tuple[str | None, ...], str] = {}
        self._unavailable: set[tuple[str | None, ...]] = set()  # failed with DataUnavailable

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def modality_option(self) -> str | None:
        """The plugin's modality option: the one named like the plugin, else its first."""
        options = self.info.options.get("modality", [])
        return self.name if self.name in options else (options[0] if options else None)

    @property
    def data_options(self) -> list[str]:
        return list(self.info.options.get("data", []))

    @property
    def main_data(self) -> str | None:
        """The data option the media checks use: the modality's default one, else the first,
        passing over options whose data is not on this machine (:class:`DataUnavailable`)."""
        options = self.data_options
        ordered = [*([self.modality_option] if self.modality_option in options else []), *options]
        return next((data for data in ordered if not self._data_unavailable(data)), options[0] if options else None)

    def _data_unavailable(self, data: str) -> bool:
        try:
            self.dataset(data)
        except Blocked as err:
            return err.unavailable
        except Exception:  # a real failure: the option stays, and its check reports it
            return False
        return False

    def overrides(self, data: str | None = None, modality: str | None = None) -> list[str]:
        """``modality=... data=...`` plus the settings' overrides of that data option."""
        chosen = [f"modality={modality or self.modality_option}", f"data={data}" if data else "~data"]
        return chosen + list(self.settings.data_overrides.get(data, [])) if data else chosen

    def compose(self, *extra: str, data: str | None = None, modality: str | None = None) -> DictConfig:
        return compose_config("train", [*self.overrides(data, modality), *extra])

    def build(self, what: str, key: tuple[str | None, ...], make: Callable[[], T]) -> T:
        """``make()``, once per ``key``. Its first failure raises (that check reports the root
        cause); later calls, and failures with a root cause already seen, raise :class:`Blocked`."""
        if key in self._built:
            return self._built[key]
        if key in self._failures:
            raise Blocked(what, self._failures[key], key in self._unavailable)
        try:
            self._built[key] = make()
        except Exception as err:
            missing = _data_unavailable(err)
            if missing is not None:  # not the plugin's fault: every check that needs it is skipped
                self._failures[key] = str(missing)
                self._unavailable.add(key)
                raise Blocked(what, str(missing), unavailable=True) from err
            cause, seen = describe_error(err), set(self._failures.values())
            self._failures[key] = cause
            if cause in seen:
                raise Blocked(what, cause) from err
            raise
        return self._built[key]

    def modality(self, data: str | None = None, option: str | None = None) -> Modality:
        """The modality (default: :attr:`modality_option`) as the data option configures it (a
        data config may set modality keys)."""
        option = option or self.modality_option
        return self.build(f"the modality (modality={option} data={data})", ("modality", option, data),
                          lambda: instantiate(self.compose(data=data, modality=option).modality))

    def dataset(self, data: str) -> Any:
        return self.build(f"the dataset of data={data}", ("data", data),
                          lambda: instantiate(self.compose(data=data).data.dataset))

    def batch(self, n: int = 2, data: str | None = None) -> Tensor:
        """The first ``n`` items of a dataset (default: :attr:`main_data`) as a batch."""
        dataset = self.dataset(data or self.main_data)
        return torch.stack([dataset[i]["x"] for i in range(min(n, len(dataset)))])

    def folder(self, check: str) -> Path:
        """An empty-to-start folder of :attr:`workdir` for one check's files."""
        path = self.workdir / check.replace(" ", "_")
        path.mkdir(parents=True, exist_ok=True)
        return path


def _data_unavailable(err: BaseException | None) -> DataUnavailable | None:
    """The DataUnavailable behind ``err`` (Hydra wraps a constructor's exception), if any."""
    while err is not None:
        if isinstance(err, DataUnavailable):
            return err
        err = err.__cause__ or err.__context__
    return None
