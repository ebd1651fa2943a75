"""``ModalityContractTests``: the plugin contract as pytest tests a plugin's own suite subclasses
(the way Hydra ships its launcher test suite for launcher plugins).

    from diffusionkit.testing import ModalityContractTests

    class TestMyContract(ModalityContractTests):
        plugin = "mymodality"                                  # the entry-point name
        data_overrides = {"mymodality": ["data.dataset.per_class=4"]}

The plugin must be installed (``pip install -e .``). Every test calls the same check function as
``diffusionkit plugins check`` (a plugin's exception shows its traceback here); a test whose check
does not apply, or needs a modality or dataset that another test found cannot be built, is
skipped. The tiny training run is marked ``slow``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from diffusionkit.errors import UsageError

from .checks_long import check_long_items
from .checks_media import check_bad_files, check_dataset_items, check_optional_methods, check_rendering, check_roundtrip
from .checks_package import check_config_options, check_contract_version, check_entry_point, check_option_names
from .failures import Blocked
from .subject import CheckResult, ContractSettings, PluginUnderTest
from .tiny_run import TINY_RUN, check_train_and_sample


def expect_passed(results: list[CheckResult]) -> None:
    """Fail the test with every failed finding, one per line; skip it if every finding was skipped."""
    failures = [f"{r.check}: {r.detail}" for r in results if r.failed]
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
    if results and all(r.skipped for r in results):
        pytest.skip("; ".join(f"{r.check}: {r.detail}" for r in results))


def run_as_test(check: Callable[..., list[CheckResult]], subject: PluginUnderTest, *args: Any) -> None:
    """One check as a test: its failures fail it; it is skipped when it does not apply, or when it
    needs something whose failure another test reports (:class:`Blocked`)."""
    try:
        results = check(subject, *args)
    except Blocked as err:
        pytest.skip(str(err))
    expect_passed(results)


class ModalityContractTests:
    """Subclass as ``Test...`` and set :attr:`plugin`; the other attributes tune the checks."""

    #: the plugin's entry-point name (``diffusionkit plugins list`` shows it).
    plugin: ClassVar[str] = ""
    #: extra overrides per data option, to keep the tests small.
    data_overrides: ClassVar[dict[str, list[str]]] = {}
    #: how far dataset items may go beyond [-1, 1].
    value_slack: ClassVar[float] = 0.1
    #: the largest model-space RMSE of load -> save -> load.
    roundtrip_rmse: ClassVar[float] = 0.1
    #: extra unreadable files (name -> bytes) that must raise MediaError.
    bad_files: ClassVar[dict[str, bytes]] = {}
    #: the overrides of the slow tiny training run.
    tiny_run: ClassVar[list[str]] = TINY_RUN

    def write_sample(self, stem: Path) -> Path | None:
        """Override to write a real media file at ``stem`` (your suffix) by other means than the
        plugin's own ``save`` (e.g. another library), and return its path; the round trip starts
        from it. None: a dataset item saved by the plugin."""
        return None

    @pytest.fixture(scope="class")
    @classmethod
    def subject(cls, tmp_path_factory: pytest.TempPathFactory) -> PluginUnderTest:
        """The installed plugin, built once per test class."""
        if not cls.plugin:
            pytest.fail(f"{cls.__name__}: set `plugin = \"<entry-point name>\"`", pytrace=False)
        writer = None if cls.write_sample is ModalityContractTests.write_sample else cls().write_sample
        settings = ContractSettings(data_overrides=dict(cls.data_overrides), value_slack=cls.value_slack,
                                    roundtrip_rmse=cls.roundtrip_rmse, bad_files=dict(cls.bad_files),
                                    write_sample=writer)
        try:
            return PluginUnderTest(cls.plugin, tmp_path_factory.mktemp(f"contract_{cls.plugin}"), settings)
        except UsageError as err:
            pytest.fail(str(err), pytrace=False)

    def test_contract_version(self, subject: PluginUnderTest) -> None:
        run_as_test(check_contract_version, subject)

    def test_entry_point_names_a_complete_modality(self, subject: PluginUnderTest) -> None:
        run_as_test(check_entry_point, subject)

    def test_option_names_are_unique(self, subject: PluginUnderTest) -> None:
        run_as_test(check_option_names, subject)

    def test_every_config_option_composes_and_instantiates(self, subject: PluginUnderTest) -> None:
        run_as_test(check_config_options, subject)

    def test_dataset_items_have_the_declared_shape_dtype_and_range(self, subject: PluginUnderTest) -> None:
        run_as_test(check_dataset_items, subject)

    def test_load_save_load_round_trip(self, subject: PluginUnderTest) -> None:
        run_as_test(check_roundtrip, subject)

    def test_bad_files_raise_one_line_media_errors(self, subject: PluginUnderTest) -> None:
        run_as_test(check_bad_files, subject)

    def test_rendering_for_loggers_and_grids(self, subject: PluginUnderTest) -> None:
        run_as_test(check_rendering, subject)

    def test_long_items_are_saved_and_rendered_in_full(self, subject: PluginUnderTest) -> None:
        run_as_test(check_long_items, subject)

    def test_optional_methods(self, subject: PluginUnderTest) -> None:
        run_as_test(check_optional_methods, subject)

    @pytest.mark.slow
    def test_tiny_train_and_sample(self, subject: PluginUnderTest) -> None:
        run_as_test(check_train_and_sample, subject, self.tiny_run)
