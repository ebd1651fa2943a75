"""The ``diffusionkit`` command: ``diffusionkit <command> [key=value ...]`` (Hydra overrides).

:func:`main` tells the cases apart (help, a process Lightning started, ``plugins``, ``--cfg``, a
``-m`` sweep, one command run) and turns a user's error into one line; what a command is and how
it runs lives in :mod:`diffusionkit.commands`. No module of the package imports this one. The
cases' own modules (the sweep's Hydra internals, training, plugins) are imported only in the case
that needs them, so ``--help`` and a single command's start stay quick.
"""

from __future__ import annotations

import gc
import os
import sys

from diffusionkit.training.processes import spawned_run_dir  # plain Python: no torch, no Lightning

HELP_WORDS = ("-h", "--help", "help")
#: how the command line asks for a sweep (one job per combination: :mod:`diffusionkit.sweep`).
MULTIRUN_FLAGS = ("-m", "--multirun")
#: what ``--cfg`` may print: the command's config (job), Hydra's own settings (hydra), or both (all).
CONFIG_PARTS = ("job", "hydra", "all")

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
  finetune   teach it your files: diffusionkit finetune ckpt=PATH data=folder data.dataset.root=DIR [method=lora]
  recognizer name an input's class (label=auto) by a trained classifier:
                                 diffusionkit recognizer ckpt=PATH [data=NAME] [epochs=20] out=DIR
  cascade    stages as one file: diffusionkit cascade ckpt=BASE,UPSAMPLER out=DIR
  studio     a page to try it:   diffusionkit studio [ckpt=PATH] [host=127.0.0.1] [port=7860]
  plugins    list the plugins:   diffusionkit plugins list
             start a new one:    diffusionkit plugins new NAME [dir=PATH]
             check one:          diffusionkit plugins check NAME [train=true]

ckpt= also takes a run folder (the out= of train or finetune), a bundle a plugin ships, by name (e.g.
ckpt=drums_starter), and a cascade: a base and its upsamplers (train stage=upsampler),
comma-separated (ckpt=BASE,UPSAMPLER). input= of vary, convert, inpaint, extend and animate also
takes a folder: each of its files (sub-folders too) is edited into out/<its name>/, the model loaded once.
Options are Hydra overrides; add --cfg job to print the composed config without running (--cfg hydra:
Hydra's own). -m runs one job per combination: diffusionkit vary ... -m strength=0.2,0.4 seed=0,1
(hydra/launcher=submitit_slurm sends them to SLURM)."""


def main(argv: list[str] | None = None) -> int:
    """Run ``diffusionkit <command> [key=value ...]``; the exit code is 0, 2 for a user's error
    (printed as one line; ``DIFFUSIONKIT_DEBUG=1`` shows the traceback) and 130 when interrupted."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in HELP_WORDS:  # before any import: help answers at once
        print(USAGE)
        return 0
    if args[0] != "plugins" and any(arg in HELP_WORDS[:2] for arg in args[1:]):  # generate --help (plugins has its own)
        print(command_help(args[0]))
        return 0
    if argv is None and args[0] != "plugins":  # a process of its own: run it on a faster allocator
        from diffusionkit.allocator import relaunch_with_allocator

        relaunch_with_allocator([sys.executable, *sys.orig_argv[1:]])
    gc.disable()  # importing torch makes ~10^6 long-lived objects: collecting them while importing is wasted
    from diffusionkit.commands import error_line, quiet_libraries, user_message

    gc.freeze()  # and later collections skip them
    gc.enable()
    quiet_libraries()
    command, overrides = args[0], args[1:]
    try:
        return dispatch(command, overrides)
    except Exception as err:
        message = user_message(err)
        if message is None or os.environ.get("DIFFUSIONKIT_DEBUG"):
            raise
        print(error_line(command, message), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"diffusionkit {command}: interrupted", file=sys.stderr)
        return 130


def command_help(command: str) -> str:
    """A command's lines of :data:`USAGE` and how to see all its options with their defaults; the
    whole usage for a name that is no command."""
    lines = USAGE.splitlines()
    start = next((i for i, line in enumerate(lines) if line.split()[:1] == [command]), None)
    if start is None:
        return USAGE
    end = next((i for i in range(start + 1, len(lines))
                if not lines[i].startswith("  ") or not lines[i][2:3].isspace()), len(lines))
    return "\n".join([f"usage: diffusionkit {command} [key=value ...]", "", *lines[start:end], "",
                      f"every option and its default: diffusionkit {command} [key=value ...] --cfg job"])


def dispatch(command: str, overrides: list[str]) -> int:
    """Hand the arguments to the case they name; returns the exit code."""
    if spawned_run_dir() is not None:  # Lightning started this process for a multi-process run
        return run_spawned_process()
    if command == "plugins":
        return run_plugins(overrides)
    return run_with_overrides(command, overrides)


def run_with_overrides(command: str, overrides: list[str]) -> int:
    """A command with Hydra overrides: print its config (``--cfg``), sweep it (``-m``) or run it once."""
    given = [o for o in overrides if o not in MULTIRUN_FLAGS]
    is_sweep = len(given) < len(overrides)
    if "--cfg" in overrides:
        return print_config(command, given, is_sweep)
    if is_sweep:
        from diffusionkit.sweep import run_sweep

        return run_sweep(command, given)
    from diffusionkit.commands import run_command

    run_command(command, overrides)
    return 0


def run_spawned_process() -> int:
    """A process Lightning's launcher started joins its run (it reads the first process's config)."""
    from diffusionkit.apps.train import run_spawned

    run_spawned(spawned_run_dir())
    return 0


def run_plugins(arguments: list[str]) -> int:
    """``diffusionkit plugins list | new NAME | check NAME`` (plain arguments, not Hydra overrides)."""
    from diffusionkit.apps.plugins_cmd import main as plugins_main

    return plugins_main(arguments)


def print_config(command: str, overrides: list[str], is_sweep: bool) -> int:
    """``--cfg job|hydra|all``: print the composed config without running (a sweep: its first job's)."""
    from omegaconf import OmegaConf

    from diffusionkit.config import compose_config
    from diffusionkit.sweep import first_job

    part = next((o for o in overrides if o in CONFIG_PARTS), "job")
    rest = [o for o in overrides if o not in ("--cfg", part)]
    cfg = compose_config(command, first_job(command, rest) if is_sweep else rest, hydra_node=part != "job")
    print(OmegaConf.to_yaml(cfg.hydra if part == "hydra" else cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
