"""The contract checks in one list, and a runner that turns any exception into a finding."""

from __future__ import annotations

from collections.abc import Callable

from .checks_long import check_long_items
from .checks_media import check_bad_files, check_dataset_items, check_optional_methods, check_rendering, check_roundtrip
from .checks_package import check_config_options, check_contract_version, check_entry_point, check_option_names
from .failures import Blocked, describe_error
from .subject import CheckResult, PluginUnderTest, failed, skipped
from .tiny_run import check_train_and_sample

Check = Callable[[PluginUnderTest], list[CheckResult]]

#: the quick part of the contract (seconds), in order: later checks need what earlier ones prove.
QUICK_CHECKS: tuple[Check, ...] = (
    check_contract_version, check_entry_point, check_option_names, check_config_options,
    check_dataset_items, check_roundtrip, check_bad_files, check_rendering, check_long_items,
    check_optional_methods,
)
#: the slow part: a tiny training run and sampling (about ten seconds to a minute).
SLOW_CHECKS: tuple[Check, ...] = (check_train_and_sample,)


def run_check(check: Check, subject: PluginUnderTest) -> list[CheckResult]:
    """One check's findings; an exception it raises becomes a failure naming the check."""
    name = check.__name__.removeprefix("check_").replace("_", " ")
    try:
        return check(subject)
    except Blocked as err:  # its cause is reported once, by the check that met it first
        return skipped(name, err.after_report)
    except Exception as err:  # a plugin bug must read as a finding, not a traceback
        return failed(name, f"raised {describe_error(err)}")


def run_checks(subject: PluginUnderTest, slow: bool = False) -> list[CheckResult]:
    """Every quick check (and the slow ones if asked); stops after a failed entry point or
    contract version, since nothing else can run then."""
    results: list[CheckResult] = []
    for check in QUICK_CHECKS + (SLOW_CHECKS if slow else ()):
        results += run_check(check, subject)
        if check in (check_contract_version, check_entry_point) and any(r.failed for r in results):
            break
    return results
