"""Every command's options, checked before the command starts any work.

One table per command lists its options (dotted config key, kind of value, what it means); a
value the kind does not accept is one line naming the option, the value and what it accepts,
instead of a traceback from deep inside a library. Options the tables do not list but the user
set (a plugin's ``modality.size=``, ``net.model_channels=``...) are checked against the type of
their default value. Checks that need the model (a class ``label=``) stay with the commands.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from diffusionkit.devices import PRECISIONS
from diffusionkit.diffusion.objectives import PREDICTIONS, WEIGHTINGS
from diffusionkit.diffusion.samplers import SAMPLERS
from diffusionkit.diffusion.schedules import SPACINGS
from diffusionkit.errors import UsageError
from diffusionkit.option_kinds import (Bundles, Choice, DeviceName, Each, ExistingFile, Kind, NewFolder, NotText, Number,
                                       PathText, Refused, Settings, Whole, Word, is_number, shown)

MAX_ITEMS = 100_000  # items one command makes (n=, samples.n=, n_per_class=)
MAX_STEPS = 10_000  # sampling steps
MAX_SEED = 2**32 - 1  # the seeds numpy and Lightning accept
MAX_GUIDANCE = 100.0  # far past any useful scale; larger ones overflow into NaN pictures, silently
STAGES = ("diffusion", "autoencoder", "upsampler")
METHODS = ("sdedit", "invert")
#: config nodes handed to a library as they are (Lightning's Trainer takes ``devices=auto`` where
#: its default is 1): their types are the library's to check, not inferred from the defaults.
PASSED_THROUGH = ("trainer.", "logger.", "hydra.")
_ABSENT = object()


@dataclass(frozen=True)
class Option:
    """One option of a command: its dotted config key, the kind of value, what it means."""

    name: str
    kind: Kind
    hint: str = ""
    nullable: bool = False

    def check(self, cfg: DictConfig) -> None:
        """Refuse a bad value in one line (UsageError); store the value as the command uses it.
        Unset (``???``) values are left to the command's own 'missing value' line."""
        value = OmegaConf.select(cfg, self.name, default=_ABSENT)
        if value is _ABSENT or (value is None and self.nullable):
            return
        try:
            read = self.kind.read(value)
        except Refused as refused:
            raise UsageError(self.kind.explain(self.name, value, self.hint, str(refused))) from None
        if read != value or type(read) is not type(value):
            OmegaConf.update(cfg, self.name, read, merge=False)


@dataclass(frozen=True)
class Rule:
    """A condition between several options, checked once each of them is valid: ``problem``
    takes their values (in ``names`` order) and returns the one line, or None when they fit."""

    names: tuple[str, ...]
    problem: Callable[..., str | None]

    def check(self, cfg: DictConfig) -> None:
        values = [OmegaConf.select(cfg, name) for name in self.names]
        values = [OmegaConf.to_container(v) if isinstance(v, (DictConfig, ListConfig)) else v for v in values]
        problem = self.problem(*values)
        if problem:
            raise UsageError(problem)


def region_problem(start: float, end: float) -> str | None:
    """``inpaint``: the region must not be empty."""
    if start < end:
        return None
    return f"need 0 <= start < end <= 1 (fractions of the length), got start={start} end={end}"


def max_steps_problem(max_steps: int) -> str | None:
    """``train``: zero steps would write an untrained model."""
    if max_steps != 0:
        return None
    return ("trainer.max_steps=0 trains nothing (the bundle would hold untrained weights); give at least 1 step, "
            "or -1 for no step limit with trainer.max_epochs")


#: checked only where the run has a cosine decay (a rule, since ``optim=adamw`` has no such key)
COSINE_STEPS = Option("optim.lr_scheduler.T_max", Whole(1), "the cosine decay's length in steps, trainer.max_steps "
                      "unless set; with no step limit set it, or choose optim=adamw")


def cosine_steps_problem(scheduler: dict | None, t_max: Any) -> str | None:
    """``train`` with ``optim=adamw_cosine``: the decay needs a length (no scheduler: nothing to check)."""
    if not scheduler or "T_max" not in scheduler:
        return None
    try:
        COSINE_STEPS.kind.read(t_max)
    except Refused as refused:
        return COSINE_STEPS.kind.explain(COSINE_STEPS.name, t_max, COSINE_STEPS.hint, str(refused))
    return None


def sampler_options(name: str) -> list[str]:
    """The keyword options of the sampler ``name`` beyond those every sampler takes (ddim: eta)."""
    common = set.intersection(*(set(inspect.signature(f).parameters) for f in SAMPLERS.values()))
    return [p for p in inspect.signature(SAMPLERS[name]).parameters if p not in common]


def sampler_options_problem(name: str, options: dict | None) -> str | None:
    """An option under ``sampler.options`` that the chosen sampler does not take."""
    unknown = sorted(set(options or {}) - set(sampler_options(name)))
    if not unknown:
        return None
    takes = ", ".join(sampler_options(name)) or "no options"
    return f"sampler {name} takes no option '{unknown[0]}' (sampler.options.{unknown[0]}); it takes: {takes}"


def table(*options: Option) -> dict[str, Option]:
    """Options by name; a later option of the same name replaces an earlier one."""
    return {option.name: option for option in options}


SEED = Option("seed", Whole(0, MAX_SEED), "the same seed gives the same results")
OUT = Option("out", NewFolder(), nullable=True)
SAMPLER = (Option("sampler.name", Choice(tuple(SAMPLERS))), Option("sampler.spacing", Choice(SPACINGS)))
GUIDANCE = Option("guidance", Number(0, MAX_GUIDANCE), "classifier-free guidance scale; 1 = off")
STRENGTH = Option("strength", Number(0, 1), "0 = the input itself, 1 = a new sample")
INPUT = Option("input", ExistingFile(), "a file, or a folder: each of its files is edited into out/<its name>/")
RUNTIME = (Option("device", DeviceName()), Option("precision", Choice(PRECISIONS)),
           Option("adapter_scale", Number(-10, 10), "0 = the adapter's base, 1 = the adapter as trained"))

SAMPLER_SETTINGS = table(
    Option("ckpt", Bundles()),
    Option("steps", Whole(1, MAX_STEPS), "sampling steps"),
    GUIDANCE, SEED, OUT, *SAMPLER, *RUNTIME,
    Option("guide", Each(Word()), "the model's condition names, e.g. guide=[label]", nullable=True),
    Option("batch_size", Whole(1), "items sampled at once"),
)
SAMPLING = table(Option("n", Whole(1, MAX_ITEMS), "how many items to make"), *SAMPLER_SETTINGS.values())

OPTIONS: dict[str, dict[str, Option]] = {
    "generate": SAMPLING,
    "vary": table(*SAMPLING.values(), INPUT, STRENGTH),
    "convert": table(*SAMPLING.values(), INPUT, STRENGTH, Option("method", Choice(METHODS))),
    "inpaint": table(*SAMPLING.values(), INPUT, Option("start", Number(0, 1), "a fraction of the length"),
                     Option("end", Number(0, 1), "a fraction of the length")),
    "extend": table(*SAMPLING.values(), INPUT,
                    Option("context", Number(0, 1, low_open=True, high_open=True), "a fraction of the window"),
                    Option("times", Whole(1, 1000), "windows to append")),
    "interpolate": table(*SAMPLING.values(), Option("a", ExistingFile()), Option("b", ExistingFile()), STRENGTH,
                         Option("n", Whole(2, MAX_ITEMS), "the items from a to b inclusive")),
    "animate": table(*SAMPLING.values(), INPUT, Option("last", ExistingFile(), nullable=True),
                     Option("keep", Whole(0), "steps kept from the input")),
    "roundtrip": table(INPUT, OUT),
    "cascade": table(Option("ckpt", Bundles()), OUT),
    "recognizer": table(Option("ckpt", PathText()), Option("epochs", Whole(1, 1000)), Option("batch_size", Whole(1)),
                        Option("lr", Number(0, low_open=True)), Option("width", Whole(4, 256)),
                        Option("augment_p", Number(0, 1), "the chance each augmentation is applied"),
                        Option("draws", Whole(0, 64), "augmented takes averaged when naming a class"), SEED, OUT),
    "finetune": table(Option("ckpt", PathText()), Option("method", Choice(("lora", "full"))),
                      Option("rank", Whole(1, 256)), Option("alpha", Number(0, 10000, low_open=True)),
                      Option("steps", Whole(1, 1_000_000)), Option("batch_size", Whole(1)),
                      Option("lr", Number(0, low_open=True)), Option("augment_p", Number(0, 1)),
                      Option("new_class_init", Choice(("heard", "none"))),
                      Option("prior", Whole(0, MAX_ITEMS), "the base's own samples per class it rehearses"),
                      Option("forgetting", Whole(0, MAX_ITEMS), "samples per base class judged before and after"),
                      Option("steps_per_sample", Whole(1, MAX_STEPS)), Option("precision", Choice(PRECISIONS)),
                      SEED, OUT),
    "studio": table(Option("ckpt", PathText(), nullable=True), Option("host", PathText(), "an address to listen on"),
                    Option("port", Whole(0, 65535), "a TCP port; 0 = any free one"), OUT,
                    Option("runs", PathText(), "the folder searched for recent runs"),
                    Option("max_upload_mb", Number(0, 4096, low_open=True), "the largest upload in MB"),
                    Option("max_items", Whole(1, 64), "the most items one request makes"), *RUNTIME),
    "evaluate": table(
        Option("classifier", Settings(off=False)),
        Option("vary", Settings(off=False), "vary.strengths=[] skips the variations"),
        Option("convert", Settings(off=False), "convert.pairs=[] skips the conversions"),
        Option("prompts", Settings(off=False), "prompts.n=0 skips the prompt checks"),
        *SAMPLER_SETTINGS.values(), Option("n_per_class", Whole(1, MAX_ITEMS), "samples judged per class"),
        Option("classifier.epochs", Whole(1), "null = 8 self-judged, 20 with data=", nullable=True), Option("classifier.batch_size", Whole(1)),
        Option("classifier.lr", Number(0, low_open=True)), Option("classifier.width", Whole(1)),
        Option("classifier.augment_p", Number(0, 1), "the chance each augmentation is applied"),
        Option("classifier.balanced", Choice(("auto", True, False))),
        Option("per_step", Choice(("auto", True, False))),
        Option("real_folds", Whole(2), "folds of the real data's sources"),
        Option("auto_label_per_class", Whole(0, MAX_ITEMS), "0 = skip"),
        Option("vary.strengths", Each(Number(0, 1))), Option("vary.sources_per_class", Whole(1)),
        Option("vary.n", Whole(1, MAX_ITEMS)), Option("vary.guidance", GUIDANCE.kind, GUIDANCE.hint),
        Option("convert.strengths", Each(Number(0, 1))), Option("convert.method", Choice(METHODS)),
        Option("convert.sources", Whole(1)),
    ),
    "train": table(
        SEED, OUT, *SAMPLER, Option("stage", Choice(STAGES)),
        Option("data.batch_size", Whole(1), "items per training batch"),
        Option("data.num_workers", Whole(0), "data loading processes; 0 = none"),
        Option("data.val_fraction", Number(0, 1, high_open=True), "the share of items held out"),
        Option("trainer.max_steps", Whole(-1), "-1 = no limit"),
        Option("trainer.max_epochs", Whole(-1), "-1 = no limit"),
        Option("checkpoint.every_n_train_steps", Whole(0), "0 = only at the end"),
        Option("samples.every_n_steps", Whole(0), "0 = never"),
        Option("samples.n", Whole(1, MAX_ITEMS)), Option("samples.steps", Whole(1, MAX_STEPS)),
        Option("samples.guidance", GUIDANCE.kind, GUIDANCE.hint),
        Option("optim.optimizer.lr", Number(0, low_open=True), "the learning rate"),
        Option("optim.optimizer.weight_decay", Number(0)),
        Option("diffusion.min_snr_gamma", Number(0, low_open=True), "Min-SNR's clamp of the loss weight"),
        Option("diffusion.prediction", Choice(PREDICTIONS)),
        Option("diffusion.loss_weighting", Choice(WEIGHTINGS)),
        Option("diffusion.label_dropout", Number(0, 1), "the share of labels dropped for guidance"),
        Option("diffusion.cond_dropout", Number(0, 1), "the share of concatenated conditions dropped for guidance"),
        Option("diffusion.ema_decay", Number(0, 1)),
    ),
}

SAMPLER_OPTIONS = Rule(("sampler.name", "sampler.options"), sampler_options_problem)
RULES: dict[str, tuple[Rule, ...]] = {
    **{command: (SAMPLER_OPTIONS,) for command, options in OPTIONS.items() if "sampler.name" in options},
    "inpaint": (SAMPLER_OPTIONS, Rule(("start", "end"), region_problem)),
    "train": (SAMPLER_OPTIONS, Rule(("trainer.max_steps",), max_steps_problem),
              Rule(("optim.lr_scheduler", "optim.lr_scheduler.T_max"), cosine_steps_problem)),
}


def value_overrides(overrides: list[str]) -> list[str]:
    """The keys of overrides that set a value (``key=value``, ``++key=value``), not a config
    group's choice, an addition (``+key=``), a deletion or one of Hydra's own settings."""
    from diffusionkit.config import available_options

    groups = set(available_options())
    keys = []
    for override in overrides:
        match = re.fullmatch(r"(\+\+)?([A-Za-z_][\w.]*)=.*", override, flags=re.S)
        if match and match.group(2) not in groups and not match.group(2).startswith(PASSED_THROUGH):
            keys.append(match.group(2))
    return keys


def kind_like(default: Any) -> Kind | None:
    """What an option takes at the least, judged by its default: no text where the default is a
    flag, a number, a list or a mapping (None: anything, where the default is null or a text)."""
    if isinstance(default, bool):
        return NotText("true or false")
    if is_number(default):
        return NotText()
    if isinstance(default, (list, ListConfig)):
        return NotText("a list")
    if isinstance(default, (dict, DictConfig)):
        return Settings()
    return None


def like_defaults(keys: list[str], defaults: DictConfig) -> list[Option]:
    """Options for ``keys``, each taking what its value in ``defaults`` suggests (see :func:`kind_like`)."""
    options = []
    for key in keys:
        default = OmegaConf.select(defaults, key, default=None)
        kind = kind_like(default)
        if kind is not None:
            options.append(Option(key, kind, f"its default is {shown(default)}"))
    return options


def check_like_defaults(values: dict[str, Any], defaults: DictConfig) -> None:
    """Refuse in one line a value of ``values`` that cannot be what its default in ``defaults``
    suggests (``size=abc`` where the default is 32), e.g. a sampling command's media options."""
    given = OmegaConf.create(values)
    for option in like_defaults(list(values), defaults):
        option.check(given)


def inferred_options(command: str, overrides: list[str], known: dict[str, Option]) -> list[Option]:
    """Options the user set that the command's table does not list, each checked against the
    type of its default (the config composed without the user's values)."""
    from diffusionkit.config import compose_config

    keys = [key for key in value_overrides(overrides) if key not in known]
    if not keys:
        return []
    try:
        defaults = compose_config(command, [o for o in overrides if o.split("=", 1)[0].lstrip("+") not in keys])
    except UsageError:
        return []
    return like_defaults(keys, defaults)


def _raw(cfg: DictConfig, key: str) -> Any:
    """The value of ``key`` as written, interpolations unresolved."""
    node: Any = OmegaConf.to_container(cfg, resolve=False)
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


#: parts of a command's config resolved later, against a model's own config: ``evaluate data=``
#: names the model's modality as ``${modality}``.
RESOLVED_LATER = {"evaluate": ("data",), "recognizer": ("data",), "finetune": ("data",)}


def check_resolves(cfg: DictConfig, later: tuple[str, ...] = ()) -> None:
    """Refuse a ``${...}`` in a value that names no option (e.g. in a file name) in one line;
    the top-level parts ``later`` are left to the command."""
    try:
        OmegaConf.to_container(cfg, resolve=True) if not later else \
            OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k not in later]), resolve=True)
    except OmegaConfBaseException as err:
        key = str(getattr(err, "full_key", "") or "")
        reason = next((line.strip() for line in str(getattr(err, "msg", err)).splitlines() if line.strip()), "")
        raise UsageError(f"{key}={shown(_raw(cfg, key))}: {reason}; '${{...}}' in a value names another option "
                         f"(write \\${{ for the characters themselves)") from None


def check_options(command: str, cfg: DictConfig, overrides: list[str]) -> None:
    """Refuse the first bad option of ``diffusionkit <command> <overrides>`` in one line
    (UsageError), before the command does anything; normalise the others in ``cfg``."""
    from diffusionkit.config import data_made_for_another_modality

    mismatch = data_made_for_another_modality(cfg, overrides) if command == "train" else None
    if mismatch:
        raise UsageError(mismatch)
    check_resolves(cfg, RESOLVED_LATER.get(command, ()))
    known = OPTIONS.get(command, {})
    for option in [*known.values(), *inferred_options(command, overrides, known)]:
        option.check(cfg)
    for rule in RULES.get(command, ()):
        rule.check(cfg)
