"""Contract checks of a plugin's packaging: contract version, entry point, config options."""

from __future__ import annotations

import importlib
import inspect

from hydra.utils import instantiate
from omegaconf import OmegaConf

from diffusionkit.config import core_options
from diffusionkit.modality import CONTRACT_VERSION, ConcatCondition, Modality
from diffusionkit.plugins import contract_problem, discover, import_error, option_clashes
from diffusionkit import trusted_targets
from diffusionkit.trusted_targets import TargetRefused, check_config

from .failures import Blocked, describe_error
from .subject import CheckResult, PluginUnderTest, failed, passed, skipped


class OptionProblem(Exception):
    """What the kit itself finds wrong with an option (shown as it is, without a type name)."""


def modality_class(subject: PluginUnderTest) -> type:
    """The class the entry point names (imports the plugin)."""
    module, _, attr = subject.info.target.partition(":")
    return getattr(importlib.import_module(module), attr)


def check_contract_version(subject: PluginUnderTest) -> list[CheckResult]:
    problem = contract_problem(subject.info)
    if problem:
        return failed("contract version", problem)
    return passed("contract version", f"targets plugin contract {CONTRACT_VERSION}")


def check_entry_point(subject: PluginUnderTest) -> list[CheckResult]:
    """The entry point imports, names a complete Modality subclass with file extensions."""
    target = subject.info.target
    error = import_error(subject.info)
    if error:
        module = target.split(":")[0]
        return failed("entry point", f"cannot import {target}: {error}; fix: make `python -c 'import {module}'` "
                                     f"work (install what it needs), or correct the entry point in pyproject.toml")
    cls = modality_class(subject)
    if not (inspect.isclass(cls) and issubclass(cls, Modality)):
        return failed("entry point", f"{target} is not a subclass of diffusionkit.modality.Modality; "
                                     f"point the entry point at your Modality class")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        return failed("entry point", f"{cls.__name__} does not implement {', '.join(missing)} "
                                     f"(see diffusionkit.modality.Modality)")
    extensions = cls.file_extensions
    if not extensions or any(not (e.startswith(".") and e == e.lower()) for e in extensions):
        return failed("entry point", f"{cls.__name__}.file_extensions is {extensions!r}; list the suffixes load() "
                                     f"reads, lower case with the dot, e.g. ('.csv',)")
    return passed("entry point", f"{target} is a Modality reading {', '.join(extensions)}")


def check_option_names(subject: PluginUnderTest) -> list[CheckResult]:
    """The plugin ships conf/modality/<name>.yaml, and no option name clashes with another's."""
    info = subject.info
    if info.conf_dir is None:
        return failed("config options", f"no conf/ folder inside package {info.package}; ship "
                                        f"{info.package}/conf/modality/{info.name}.yaml (as package data)")
    if subject.modality_option is None:
        return failed("config options", f"{info.conf_dir} has no modality/ option; add modality/{info.name}.yaml "
                                        f"with a _target_ to your Modality class")
    plugins = sorted([*(p for p in discover() if p.name != info.name), info], key=lambda p: p.name)  # search order
    clashes = [c for c in option_clashes(core_options(), plugins) if f" {info.distribution} " in f" {c} "
               or f" {info.distribution};" in c]
    if clashes:
        return [CheckResult("config options", False, clash) for clash in clashes]
    count = sum(len(names) for names in info.options.values())
    return passed("config options", f"{count} options, none clashing with the core's or another plugin's")


def _check_bundle_safe(subject: PluginUnderTest, group: str, option: str) -> None:
    """The run config with this option passes the bundle check (else every model trained with it
    would be refused when loaded)."""
    if group == "modality":
        cfg = subject.compose(data=subject.main_data, modality=option)
    elif group == "data":
        cfg = subject.compose(data=option)
    else:
        cfg = subject.compose(f"{group}={option}", data=subject.main_data)
    try:
        check_config(OmegaConf.to_container(cfg, resolve=True), "run")
    except TargetRefused as err:
        raise OptionProblem(f"a model trained with it could not be loaded: {err}") from None


def _check_option(subject: PluginUnderTest, group: str, option: str) -> str:
    """Build one option, then check that a model trained with it would load; return what was built."""
    built = _build_option(subject, group, option)
    _check_bundle_safe(subject, group, option)
    return built


def _build_option(subject: PluginUnderTest, group: str, option: str) -> str:
    """Compose (and, for modality/data/cond, instantiate) one option; return what was built."""
    if group == "modality":
        modality = subject.modality(subject.main_data, option)
        if not isinstance(modality, Modality) or not 1 <= modality.spatial_rank <= 3:
            raise OptionProblem(f"builds {type(modality).__name__}, not a Modality of spatial rank 1, 2 or 3")
        return f"{type(modality).__name__} of shape {list(modality.shape)}"
    if group == "data":
        first_line = (subject.info.conf_dir / "data" / f"{option}.yaml").read_text().split("\n", 1)[0]
        if first_line.strip() != "# @package _global_":
            raise OptionProblem("its first line must be '# @package _global_' (it sets data.dataset and may set "
                             "modality keys)")
        dataset = subject.dataset(option)
        classes = getattr(dataset, "classes", None)
        if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
            raise OptionProblem("the dataset needs a `classes` attribute: a list of class names (label = index)")
        return f"{type(dataset).__name__} of {len(dataset)} items, {len(classes)} classes"
    cfg = subject.compose(f"{group}={option}", data=subject.main_data)
    if group == "cond":
        condition = instantiate(cfg.cond)
        if not isinstance(condition, ConcatCondition):
            raise OptionProblem(f"builds {type(condition).__name__}, not a diffusionkit.modality.ConcatCondition")
        batch = subject.batch(2)
        shape = tuple(condition.from_data(batch).shape)
        expected = (batch.shape[0], condition.channels, *batch.shape[2:])
        if shape != expected:
            raise OptionProblem(f"from_data gives shape {list(shape)} for a batch of {list(batch.shape)}; "
                             f"expected {list(expected)}")
        return f"{type(condition).__name__} adding {condition.channels} channel(s), input {condition.input_name}="
    return "composes"


def check_config_options(subject: PluginUnderTest) -> list[CheckResult]:
    """Every option the plugin ships composes with its modality and data; modality, data and
    cond options also instantiate; the run config of each passes the bundle check."""
    # the registry of trusted targets is cached per process: the plugin under test may have been
    # registered after it was first read (a plugin registered in-process by a test)
    trusted_targets.forget_installed()
    results = []
    for group, names in sorted(subject.info.options.items()):
        for option in names:
            check = f"config {group}/{option}"
            try:
                results += passed(check, _check_option(subject, group, option))
            except Blocked as err:
                results += skipped(check, err.after_report)
            except Exception as err:  # every failure becomes a line for the author
                reason = str(err) if isinstance(err, OptionProblem) else describe_error(err)
                results += failed(check, f"{reason} (see: {_compose_command(subject, group, option)})")
    return results


def _compose_command(subject: PluginUnderTest, group: str, option: str) -> str:
    """The command that prints the composed config of one option, for the author to inspect."""
    if group == "data":
        overrides = subject.overrides(option)
    elif group == "modality":
        overrides = subject.overrides(subject.main_data, modality=option)
    else:
        overrides = [*subject.overrides(subject.main_data), f"{group}={option}"]
    return " ".join(["diffusionkit train", *overrides, "--cfg job"])
