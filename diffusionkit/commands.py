"""The command registry and how a command runs: what ``cli``, ``sweep``, the studio and the
contract kit share (so none of them imports the CLI, the top of the house).

A command is a module exposing ``run(cfg)``, configured by ``conf/<command>.yaml``; a user's
error reaches the console as one line (:func:`user_message`, :func:`error_line`).
"""

from __future__ import annotations

import importlib
import logging
import re
import warnings
from typing import Any

from hydra.errors import InstantiationException
from omegaconf import DictConfig

from diffusionkit.config import compose_config
from diffusionkit.errors import USER_ERRORS, UsageError, first_line
from diffusionkit.options import check_options
from diffusionkit.out_folder import removed_on_failure

#: command name -> module exposing ``run(cfg)``; each command's config is conf/<command>.yaml.
COMMANDS = {
    "train": "diffusionkit.apps.train",
    "generate": "diffusionkit.apps.generate",
    "evaluate": "diffusionkit.apps.evaluate",
    "vary": "diffusionkit.apps.vary",
    "convert": "diffusionkit.apps.convert",
    "inpaint": "diffusionkit.apps.inpaint",
    "extend": "diffusionkit.apps.extend",
    "interpolate": "diffusionkit.apps.interpolate",
    "animate": "diffusionkit.apps.animate",
    "roundtrip": "diffusionkit.apps.roundtrip",
    "recognizer": "diffusionkit.apps.recognizer",
    "finetune": "diffusionkit.apps.finetune",
    "cascade": "diffusionkit.apps.cascade",
    "studio": "diffusionkit.apps.studio",
}


def run_command(command: str, overrides: list[str]) -> Any:
    """Compose ``conf/<command>.yaml`` with the overrides, check its options and run the command
    (testable entry); a failed command takes back the output folder it made if it wrote nothing."""
    if command not in COMMANDS:
        raise UsageError(f"unknown command '{command}'; choose one of: {', '.join([*COMMANDS, 'plugins'])}")
    cfg = compose_config(command, overrides)
    check_options(command, cfg, overrides)
    with removed_on_failure(cfg.get("out")):
        return run_composed(command, cfg)


def run_composed(command: str, cfg: DictConfig) -> Any:
    """Run a command on its already composed and checked config (its module is imported only now)."""
    return importlib.import_module(COMMANDS[command]).run(cfg)


def user_message(err: BaseException) -> str | None:
    """The one-line message for an error caused by the user's input, None for a bug."""
    if isinstance(err, USER_ERRORS):
        return str(err)
    if isinstance(err, InstantiationException):
        return _instantiation_message(err)
    return None


def _instantiation_message(err: InstantiationException) -> str:
    """Hydra could not build an object: the constructor's own complaint where it refused its
    options, else Hydra's first line with the likely fix."""
    cause = err.__cause__
    if isinstance(cause, USER_ERRORS):
        return str(cause)
    target = re.search(r"target '([^']+)'", str(err))
    where = f"{target.group(1).rsplit('.', 1)[-1]}: " if target else ""
    if isinstance(cause, ModuleNotFoundError):  # an option's value needs a package that is not installed
        return f"{where}{first_line(cause)} (install it, or choose another value for the option that needs it)"
    if isinstance(cause, (ValueError, TypeError)) and str(cause):  # a constructor refused its options
        message = first_line(cause)
        return message if message.startswith(where.rstrip(": ")) else f"{where}{message}"
    if cause is not None and not isinstance(cause, ImportError):  # the constructor failed on its values
        return f"{where}{type(cause).__name__}: {first_line(cause)} (check the options given to it)"
    first = str(err).splitlines()[0]
    return f"{first.replace(', set env var HYDRA_FULL_ERROR=1 to see chained exception', '')} " \
           f"(check the class name or install the plugin that provides it)"


def error_line(command: str, message: str) -> str:
    """How a user's error is printed: ``diffusionkit vary: error: <message>``."""
    return f"diffusionkit {command}: error: {message}"


def quiet_libraries() -> None:
    """Keep the console to what the user needs: no library tips or deprecation chatter."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*in eval mode at the start of training.*")  # frozen first stage
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # resuming: the run's own checkpoint folder is expected to exist; a mid-epoch restart draws a
    # fresh order of the data (diffusionkit reseeds each resumed run), which is all it needs
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
