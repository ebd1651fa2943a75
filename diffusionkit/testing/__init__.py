"""The plugin contract as checks: pytest classes for a plugin's own tests
(:class:`ModalityContractTests`) and the functions behind ``diffusionkit plugins check``.

Importing :mod:`diffusionkit.testing.contract` needs pytest (the ``test`` extra); the checks
themselves do not.
"""

from .checks import QUICK_CHECKS, SLOW_CHECKS, run_check, run_checks
from .subject import CheckResult, ContractSettings, PluginUnderTest

__all__ = ["QUICK_CHECKS", "SLOW_CHECKS", "CheckResult", "ContractSettings", "ModalityContractTests",
           "PluginUnderTest", "run_check", "run_checks"]


def __getattr__(name: str):
    """``from diffusionkit.testing import ModalityContractTests`` imports pytest only then."""
    if name == "ModalityContractTests":
        from .contract import ModalityContractTests

        return ModalityContractTests
    raise AttributeError(f"module 'diffusionkit.testing' has no attribute {name!r}")
