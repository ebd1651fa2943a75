"""``diffusionkit <command> -m key=a,b ...``: one job per combination, run by Hydra's multirun.

Hydra's sweeper expands the overrides and its launcher runs the jobs: one after another on this
machine (the basic launcher), or as SLURM jobs with ``hydra/launcher=submitit_slurm`` (the
``[cluster]`` extra). Every combination is composed and checked before any job starts; each
job writes to its own folder, ``<sweep folder>/<job number>`` (``hydra.sweep.dir``, by default
``outputs/<command>/<date>_<time>``), unless ``out=`` differs per job.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from hydra import initialize_config_module
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException

from diffusionkit.commands import error_line, run_composed, user_message
from diffusionkit.config import CORE_CONF_MODULE, compose_config, explain_hydra_error, plugin_search_path, route_inputs
from diffusionkit.errors import UsageError
from diffusionkit.options import check_options


@dataclass
class JobFailed:
    """What a job whose input was wrong returns (its one-line message was already printed)."""

    message: str


def expand(overrides: list[str]) -> list[list[str]]:
    """The override list of every job of a sweep, in Hydra's order (the basic sweeper's)."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise UsageError(explain_hydra_error(err)) from None
    return [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def first_job(command: str, overrides: list[str]) -> list[str]:
    """What ``--cfg`` shows for a sweep: the overrides of its first job, with the Hydra settings
    the sweep runs under (its folder, no ``.hydra`` subfolder)."""
    return [*expand(overrides)[0], *_hydra_defaults(command, overrides), "hydra.mode=MULTIRUN"]


def _hydra_defaults(command: str, overrides: list[str]) -> list[str]:
    """Where a sweep writes, unless the user said otherwise: jobs in ``outputs/<command>/<stamp>/<n>``,
    holding only what the command writes (no ``.hydra`` folder, no job log file)."""
    defaults = {
        "hydra.sweep.dir": f"outputs/{command}/{time.strftime('%Y-%m-%d_%H-%M-%S')}",
        "hydra.output_subdir": "null",
        "hydra/job_logging": "none",
    }
    given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    return [f"{key}={value}" for key, value in defaults.items() if key not in given]


def check_jobs(command: str, jobs: list[list[str]]) -> None:
    """Compose every job's config (so a typo fails before anything runs) and refuse jobs that
    would write to the same ``out=``."""
    outs: dict[str, int] = {}
    for number, job in enumerate(jobs):
        try:
            cfg = compose_config(command, job)
            check_options(command, cfg, job)
        except UsageError as err:
            raise UsageError(f"job {number} ({' '.join(job)}): {err}") from None
        out = cfg.get("out")
        if out is not None and str(out) in outs:
            raise UsageError(f"jobs {outs[str(out)]} and {number} would both write to out={out}; leave out= unset "
                             f"in a sweep (each job gets <sweep folder>/<job number>) or make it differ per job, "
                             f"e.g. out='runs/${{seed}}'")
        if out is not None:
            outs[str(out)] = number


def run_job(cfg: DictConfig) -> Any:
    """Hydra's task function: one job of a sweep, in this process or on a cluster node (it is a
    module-level function, so submitit can pickle it by reference)."""
    hydra = HydraConfig.get()
    command = hydra.job.config_name
    if "out" in cfg and cfg.out is None:
        with open_dict(cfg):
            cfg.out = hydra.runtime.output_dir
    try:
        return run_composed(command, cfg)
    except Exception as err:
        message = user_message(err)
        if message is None:
            raise
        print(error_line(command, f"job {hydra.job.num} ({' '.join(hydra.overrides.task)}): {message}"),
              file=sys.stderr)
        return JobFailed(message)


def run_sweep(command: str, overrides: list[str]) -> int:
    """Run a sweep; the exit code is 0 when every job succeeded, 2 when any job's input was wrong."""
    jobs = expand(overrides)
    check_jobs(command, jobs)
    arguments = [plugin_search_path(), *route_inputs(command, overrides), *_hydra_defaults(command, overrides)]
    try:
        with initialize_config_module(CORE_CONF_MODULE, version_base="1.3", job_name=command):
            returns = GlobalHydra.instance().hydra.multirun(config_name=command, task_function=run_job,
                                                             overrides=arguments)
    except (HydraException, OmegaConfBaseException) as err:
        raise UsageError(explain_hydra_error(err)) from None
    results = [job.return_value for batch in returns for job in batch]
    failed = sum(isinstance(result, JobFailed) for result in results)
    if failed:
        print(f"diffusionkit {command}: {failed} of {len(results)} jobs failed", file=sys.stderr)
    return 2 if failed else 0
