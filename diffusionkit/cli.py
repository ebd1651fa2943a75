"""The ``diffusionkit`` command: ``diffusionkit <command> [key=value ...]`` (Hydra overrides)."""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import warnings
from typing import Any

from diffusionkit.errors import USER_ERRORS, UsageError

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
    "studio": "diffusionkit.apps.studio",
}

USAGE = """usage: diffusionkit <command> [key=value ...]

commands:
  train      fit a model:        diffusionkit train modality=NAME data=NAME trainer.max_steps=2000
  generate   sample a model:     diffusionkit generate ckpt=PATH n=16 [label=3] [sampler=ddim] [steps=20]
  evaluate   judge a model:      diffusionkit evaluate ckpt=PATH
  vary       variations:         diffusionkit vary ckpt=PATH input=FILE n=8 strength=0.3
  convert    to another class:   diffusionkit convert ckpt=PATH input=FILE target=NAME strength=0.6 [method=invert]
  inpaint    redo a region:      diffusionkit inpaint ckpt=PATH input=FILE start=0.25 end=0.75
  extend     continue an input:  diffusionkit extend ckpt=PATH input=FILE context=0.5 times=1
  interpolate between two:       diffusionkit interpolate ckpt=PATH a=FILE b=FILE n=5
  animate    still -> motion:    diffusionkit animate ckpt=PATH input=FILE [last=FILE] n=4
  roundtrip  codec check:        diffusionkit roundtrip modality=NAME input=FILE
  recognizer name an input's class (label=auto) by a trained classifier:
                                 diffusionkit recognizer ckpt=PATH [data=NAME] [epochs=20] out=DIR
  studio     a page to try it:   diffusionkit studio [ckpt=PATH] [host=127.0.0.1] [port=7860]
  plugins    list the plugins:   diffusionkit plugins list
             start a new one:    diffusionkit plugins new NAME [dir=PATH]
             check one:          diffusionkit plugins check NAME [train=true]

ckpt= also takes a bundle a plugin ships, by name (e.g. ckpt=drums_starter).
Options are Hydra overrides; add --cfg job to print the composed config without running (--cfg hydra:
Hydra's own). -m runs one job per combination: diffusionkit vary ... -m strength=0.2,0.4 seed=0,1
(hydra/launcher=submitit_slurm sends them to SLURM)."""


def run_command(command: str, overrides: list[str]) -> Any:
    """Compose ``conf/<command>.yaml`` with the overrides, check its options and run the command
    (testable entry); a failed command takes back the output folder it made if it wrote nothing."""
    from diffusionkit.config import compose_config
    from diffusionkit.options import check_options
    from diffusionkit.out_folder import removed_on_failure

    if command not in COMMANDS:
        raise UsageError(f"unknown command '{command}'; choose one of: {', '.join([*COMMANDS, 'plugins'])}")
    cfg = compose_config(command, overrides)
    check_options(command, cfg, overrides)
    with removed_on_failure(cfg.get("out")):
        return importlib.import_module(COMMANDS[command]).run(cfg)


def user_message(err: BaseException) -> str | None:
    """The one-line message for an error caused by the user's input, None for a bug."""
    from hydra.errors import InstantiationException

    if isinstance(err, USER_ERRORS):
        return str(err)
    if isinstance(err, InstantiationException):
        cause = err.__cause__
        if isinstance(cause, USER_ERRORS):
            return str(cause)
        if isinstance(cause, (ValueError, TypeError)) and str(cause):  # a constructor refused its options
            target = re.search(r"target '([^']+)'", str(err))
            where = f"{target.group(1).rsplit('.', 1)[-1]}: " if target else ""
            message = str(cause).splitlines()[0]
            return message if message.startswith(where.rstrip(": ")) else f"{where}{message}"
        first = str(err).splitlines()[0]
        return f"{first.replace(', set env var HYDRA_FULL_ERROR=1 to see chained exception', '')} " \
               f"(check the class name or install the plugin that provides it)"
    return None


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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    quiet_libraries()
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, overrides = args[0], args[1:]
    try:
        from diffusionkit.training.processes import spawned_run_dir

        if spawned_run_dir() is not None:  # Lightning started this process for a multi-process run
            from diffusionkit.apps.train import run_spawned

            run_spawned(spawned_run_dir())
            return 0
        if command == "plugins":
            from diffusionkit.apps.plugins_cmd import main as plugins_main

            return plugins_main(overrides)
        from diffusionkit.sweep import MULTIRUN_FLAGS, first_job, run_sweep

        given = [o for o in overrides if o not in MULTIRUN_FLAGS]
        is_sweep = len(given) < len(overrides)
        if "--cfg" in overrides:
            from omegaconf import OmegaConf

            from diffusionkit.config import compose_config

            part = next((o for o in overrides if o in ("job", "hydra", "all")), "job")
            rest = [o for o in given if o not in ("--cfg", part)]
            cfg = compose_config(command, first_job(command, rest) if is_sweep else rest,  # a sweep: its first job
                                 hydra_node=part != "job")
            print(OmegaConf.to_yaml(cfg.hydra if part == "hydra" else cfg))
            return 0
        if is_sweep:
            return run_sweep(command, given)
        run_command(command, overrides)
    except Exception as err:
        message = user_message(err)
        if message is None or os.environ.get("DIFFUSIONKIT_DEBUG"):
            raise
        print(f"diffusionkit {command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"diffusionkit {command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
