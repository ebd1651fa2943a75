"""Bad options are one line, before any work: every case of the table must exit with code 2, print
exactly one line naming the option, the value and what it accepts, show no traceback and leave no
``out=`` folder behind. Cases run in process (no model is loaded: the checks come first, and the
checkpoint named does not exist, so a check that let a value through would fail on the checkpoint
instead); a few run as real subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import Dataset

from diffusionkit.cli import main
from diffusionkit.config import compose_config
from diffusionkit.errors import UsageError
from diffusionkit.modality import MediaError
from diffusionkit.options import OPTIONS, check_options
from diffusionkit.out_folder import make_folder, removed_on_failure
from diffusionkit.training.datamodule import ModalityDataModule
from diffusionkit.training.item_checks import check_items
from tests.toy_modality import GaussianClasses, ToyModality

GROUPS = {"evaluate": [], "roundtrip": ["modality=toy"],
          "train": ["modality=toy", "data=toy_blobs", "net=unet_small"]}
FILE = "{tmp}/a.png"  # an input that exists (never read: the bad option is refused first)
MISSING_CKPT = "ckpt={tmp}/missing.safetensors"

#: (command, overrides, what the one line must contain); ``{tmp}`` is the test's folder.
CASES = [
    ("generate", ["n=abc"], "n must be a whole number from 1 to 100000 (how many items to make), got n=abc"),
    ("generate", ["n=-1"], "got n=-1"),
    ("generate", ["n=0"], "got n=0"),
    ("generate", ["n=1.5"], "n must be a whole number from 1 to 100000"),
    ("generate", ["n=1e12"], "got n=1000000000000.0"),
    ("generate", ["n=null"], "got n=null"),
    ("generate", ["n=true"], "got n=true"),
    ("vary", ["n=-2"], "got n=-2"),
    ("vary", ["strength=1.5"], "strength must be a number from 0 to 1 (0 = the input itself, 1 = a new sample), "
                               "got strength=1.5"),
    ("vary", ["strength=-0.5"], "got strength=-0.5"),
    ("vary", ["strength=abc"], "got strength=abc"),
    ("vary", ["strength=nan"], "got strength=nan"),
    ("generate", ["steps=0"], "steps must be a whole number from 1 to 10000 (sampling steps), got steps=0"),
    ("generate", ["steps=-3"], "got steps=-3"),
    ("generate", ["steps=1000000000"], "got steps=1000000000"),
    ("generate", ["guidance=abc"], "guidance must be a number from 0 to 100 (classifier-free guidance scale; "
                                   "1 = off), got guidance=abc"),
    ("generate", ["guidance=-1"], "got guidance=-1"),
    ("generate", ["guidance=inf"], "got guidance=inf"),
    ("generate", ["guidance=1000"], "guidance must be a number from 0 to 100"),
    ("generate", ["ckpt=true"], "ckpt=true: expected a path"),
    ("generate", ["ckpt=[a,b]"], "checkpoint 'a' not found"),  # a list is a cascade, base first
    ("generate", ["out="], "out=: expected a path"),
    ("generate", ["+sampler.options.foo=1"], "sampler dpmpp_2m takes no option 'foo' (sampler.options.foo); "
                                             "it takes: no options"),
    ("generate", ["sampler=ddim", "sampler.options.eta=abc"], "sampler.options.eta must be a number (its default "
                                                              "is 0.0), got sampler.options.eta=abc"),
    ("generate", ["seed=abc"], "seed must be a whole number from 0 to 4294967295"),
    ("generate", ["seed=-1"], "got seed=-1"),
    ("generate", ["batch_size=0"], "batch_size must be a whole number of at least 1 (items sampled at once), "
                                   "got batch_size=0"),
    ("generate", ["sampler.name=fast"], "unknown sampler.name 'fast'; choose sampler.name= one of: "),
    ("generate", ["sampler.spacing=odd"], "unknown sampler.spacing 'odd'; choose sampler.spacing= one of: trailing"),
    ("convert", ["target=x", "method=bogus"], "unknown method 'bogus'; choose method= one of: sdedit, invert"),
    ("inpaint", ["start=0.8", "end=0.2"], "need 0 <= start < end <= 1 (fractions of the length), got start=0.8 "
                                          "end=0.2"),
    ("inpaint", ["start=-0.1"], "start must be a number from 0 to 1 (a fraction of the length), got start=-0.1"),
    ("inpaint", ["end=2"], "got end=2"),
    ("extend", ["context=0"], "context must be a number strictly between 0 and 1 (a fraction of the window), "
                              "got context=0"),
    ("extend", ["context=1"], "got context=1"),
    ("extend", ["times=0"], "times must be a whole number from 1 to 1000 (windows to append), got times=0"),
    ("extend", ["times=abc"], "got times=abc"),
    ("interpolate", ["b=" + FILE, "n=1"], "n must be a whole number from 2 to 100000 (the items from a to b "
                                          "inclusive), got n=1"),
    ("animate", ["keep=-1"], "keep must be a whole number of at least 0"),
    ("vary", ["input={tmp}/no_such.wav"], "input={tmp}/no_such.wav: no such file"),
    ("interpolate", ["b={tmp}/no_such.png"], "b={tmp}/no_such.png: no such file"),
    ("animate", ["last={tmp}/no_such.png"], "last={tmp}/no_such.png: no such file"),
    ("evaluate", ["n_per_class=0"], "got n_per_class=0"),
    ("evaluate", ["classifier.lr=0"], "classifier.lr must be a number above 0, got classifier.lr=0"),
    ("evaluate", ["vary.strengths=[0.1,2]"], "vary.strengths must be a list, each a number from 0 to 1, "
                                             "got vary.strengths=[0.1, 2]"),
    ("evaluate", ["real_folds=1"], "real_folds must be a whole number of at least 2 (folds of the real data's "
                                   "sources), got real_folds=1"),
    ("generate", ["-m", "seed=0,1", "n=abc"], "error: job 0 (ckpt={tmp}/missing.safetensors seed=0 n=abc"),
    ("evaluate", ["per_step=maybe"], "unknown per_step 'maybe'; choose per_step= one of: auto, true, false"),
    ("train", ["seed=abc"], "got seed=abc"),
    ("train", ["trainer.max_steps=abc"], "trainer.max_steps must be a whole number of at least -1 (-1 = no limit), "
                                         "got trainer.max_steps=abc"),
    ("train", ["trainer.max_steps=-5"], "got trainer.max_steps=-5"),
    ("train", ["optim=adamw", "trainer.max_steps=0"], "trainer.max_steps=0 trains nothing (the bundle would hold "
                                                      "untrained weights); give at least 1 step, or -1"),
    ("train", ["optim=adamw_cosine", "optim.lr_scheduler.T_max=0"],
     "optim.lr_scheduler.T_max must be a whole number of at least 1 (the cosine decay's length in steps, "
     "trainer.max_steps unless set; with no step limit set it, or choose optim=adamw), got optim.lr_scheduler.T_max=0"),
    ("train", ["optim=adamw_cosine", "trainer.max_steps=-1"], "got optim.lr_scheduler.T_max=-1"),
    ("train", ["optim=adamw_cosine", "trainer.max_steps=0"], "trainer.max_steps=0 trains nothing"),
    ("train", ["optim=adamw_cosine", "optim.lr_scheduler.T_max=abc"], "got optim.lr_scheduler.T_max=abc"),
    ("train", ["optim=adamw_cosine", "optim.lr_scheduler.T_max=null"], "got optim.lr_scheduler.T_max=null"),
    ("train", ["+sampler.options.foo=1"], "sampler dpmpp_2m takes no option 'foo' (sampler.options.foo)"),
    ("train", ["data.batch_size=0"], "got data.batch_size=0"),
    ("train", ["data.val_fraction=1"], "data.val_fraction must be a number at least 0 and below 1"),
    ("train", ["data.num_workers=-1"], "got data.num_workers=-1"),
    ("train", ["samples.n=0"], "got samples.n=0"),
    ("train", ["optim.optimizer.lr=-1"], "optim.optimizer.lr must be a number above 0 (the learning rate), "
                                         "got optim.optimizer.lr=-1"),
    ("train", ["diffusion.min_snr_gamma=-1"], "diffusion.min_snr_gamma must be a number above 0"),
    ("train", ["diffusion.prediction=foo"], "unknown diffusion.prediction 'foo'; choose diffusion.prediction= one "
                                            "of: eps, x0, v"),
    ("train", ["net.channel_mult=abc"], "net.channel_mult must be a list (its default is [1, 2, 2]), "
                                        "got net.channel_mult=abc"),
    ("train", ["stage=third"], "unknown stage 'third'; choose stage= one of: diffusion, autoencoder"),
    ("train", ["modality.max_values=abc"], "modality.max_values must be a number (its default is 1000000), "
                                           "got modality.max_values=abc"),
    ("train", ["net.model_channels=abc"], "net.model_channels must be a number (its default is 32), "
                                          "got net.model_channels=abc"),
    ("train", ["checkpoint.save_last=maybe"], "checkpoint.save_last must be true or false (its default is true), "
                                            "got checkpoint.save_last=maybe"),
    ("train", ["diffusion.clip_denoised=abc"], "diffusion.clip_denoised must be a number (its default is 1.0)"),
    ("evaluate", ["prompts=true"], "prompts must be a mapping of settings (prompts.n=0 skips the prompt checks), "
                                   "got prompts=true"),
    ("evaluate", ["vary=null"], "vary must be a mapping of settings (vary.strengths=[] skips the variations), "
                                "got vary=null"),
    ("train", ["optim=adamw_cosine", "optim.lr_scheduler=3"], "optim.lr_scheduler must be a mapping of settings (or "
                                                              "null: none) (its default is"),
    ("roundtrip", ["input={tmp}/no_such.png"], "no such file"),
    ("vary", ["input=~/kick (1).wav"], "cannot read 'input=~/kick (1).wav': Hydra needs quotes around a value with "
                                       "such characters, e.g. input=\"'~/kick (1).wav'\" (or rename the file)"),
    ("vary", ["input=müde.wav"], "e.g. input=\"'müde.wav'\""),
    ("vary", ["input=it's.wav"], "e.g. input=\"'it\\'s.wav'\""),
    ("vary", ["input=a,b.wav"], "'input=a,b.wav' holds a comma, which Hydra reads as several values: quote it for "
                                "one value, e.g. input=\"'a,b.wav'\""),
    ("vary", ["input=${{x}}.wav"], "input=${{x}}.wav: Interpolation key 'x' not found; '${{...}}' in a value names "
                                   "another option"),
]


def command_line(tmp: Path, command: str, overrides: list[str]) -> list[str]:
    """The full argument list of a case: its groups, a checkpoint or input where needed, ``out=``."""
    given = {o.split("=", 1)[0] for o in overrides}
    base = list(GROUPS.get(command, [MISSING_CKPT]))
    if command == "evaluate":
        base.append(MISSING_CKPT)
    base += [f"{key}={FILE}" for key in OPTION_FILES.get(command, ()) if key not in given]
    out = [] if "out" in given else [f"out={tmp / 'new' / 'out'}"]
    return [command, *(a.format(tmp=tmp) for a in [*base, *overrides]), *out]


OPTION_FILES = {"vary": ["input"], "convert": ["input"], "inpaint": ["input"], "extend": ["input"],
                "animate": ["input"], "interpolate": ["a", "b"], "roundtrip": ["input"]}


def one_line(capsys, argv: list[str]) -> str:
    """Run the CLI in process; the stderr line of a refusal (exit code 2, one line, no traceback)."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err and "\n" not in err and "Traceback" not in err + captured.out
    return err


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "a.png").write_bytes(b"not read")
    return tmp_path


@pytest.mark.parametrize("command, overrides, expected", CASES, ids=[f"{c[0]}:{' '.join(c[1])}" for c in CASES])
def test_a_bad_option_is_one_line_and_leaves_no_out_folder(tmp, capsys, command, overrides, expected):
    err = one_line(capsys, command_line(tmp, command, overrides))
    assert err.startswith(f"diffusionkit {command}: error: ")
    assert expected.format(tmp=tmp) in err
    assert not (tmp / "new").exists()


# --- out= ------------------------------------------------------------------------------------


def test_out_an_existing_file_is_refused_and_left_alone(tmp, capsys):
    target = tmp / "notes.txt"
    target.write_text("mine")
    err = one_line(capsys, ["generate", MISSING_CKPT.format(tmp=tmp), f"out={target}"])
    assert err.endswith(f"out={target}: is a file, not a folder; choose a new out= (nothing was overwritten)")
    assert target.read_text() == "mine"


def test_out_a_dangling_symlink_is_refused(tmp, capsys):
    link = tmp / "link"
    link.symlink_to(tmp / "gone")
    err = one_line(capsys, ["generate", MISSING_CKPT.format(tmp=tmp), f"out={link}"])
    assert err.endswith(f"out={link}: is a symbolic link to '{tmp / 'gone'}', which does not exist; choose another out=")
    assert link.is_symlink() and not (tmp / "gone").exists()


def test_out_below_a_file_is_refused(tmp, capsys):
    err = one_line(capsys, ["generate", MISSING_CKPT.format(tmp=tmp), f"out={tmp / 'a.png' / 'sub'}"])
    assert "cannot write there (Not a directory); choose a writable out=" in err


def test_out_where_nobody_may_write_is_refused_even_as_root(tmp, capsys):
    """/proc refuses new folders to every user (root ignores permissions, not a file system's refusal)."""
    err = one_line(capsys, ["generate", MISSING_CKPT.format(tmp=tmp), "out=/proc/diffusionkit_out"])
    assert err.startswith("diffusionkit generate: error: out=/proc/diffusionkit_out: cannot write there (")
    assert err.endswith("); choose a writable out=") and not Path("/proc/diffusionkit_out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder; see the /proc case")
def test_out_in_a_read_only_folder_is_refused(tmp, capsys):
    folder = tmp / "read_only"
    folder.mkdir(mode=0o555)
    err = one_line(capsys, ["generate", MISSING_CKPT.format(tmp=tmp), f"out={folder / 'out'}"])
    assert "cannot write there (Permission denied)" in err and not (folder / "out").exists()


def test_a_failed_command_takes_back_the_folders_it_made(tmp, capsys, monkeypatch):
    """roundtrip makes its folder before the plugin reads the input: a refusal then removes it (and the
    missing parents of out=, or the default outputs/<command>/<stamp>) because nothing was written."""
    (tmp / "bad.npy").write_bytes(b"not an array")
    one_line(capsys, ["roundtrip", "modality=toy", f"input={tmp / 'bad.npy'}", f"out={tmp / 'new' / 'deep' / 'out'}"])
    assert not (tmp / "new").exists()
    monkeypatch.chdir(tmp)
    one_line(capsys, ["roundtrip", "modality=toy", f"input={tmp / 'bad.npy'}"])
    assert not (tmp / "outputs").exists()


def test_a_folder_with_files_or_made_earlier_is_kept(tmp):
    kept, earlier = tmp / "kept", tmp / "earlier"
    earlier.mkdir()
    with pytest.raises(RuntimeError), removed_on_failure(str(kept)):
        (make_folder(kept) / "log.txt").write_text("written")
        raise RuntimeError
    with pytest.raises(RuntimeError), removed_on_failure(str(earlier)):
        make_folder(earlier / "sub")
        raise RuntimeError
    assert (kept / "log.txt").is_file() and earlier.is_dir() and not (earlier / "sub").exists()


# --- values that pass --------------------------------------------------------------------------


def has_key(cfg, name: str) -> bool:
    """Whether the dotted key ``name`` is in ``cfg`` (also when its value is still ``???``)."""
    parent, _, leaf = name.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return node is not None and leaf in node.keys()


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_every_listed_option_exists_and_its_default_passes(command):
    cfg = compose_config(command, GROUPS.get(command, []))
    missing = [name for name in OPTIONS[command] if not has_key(cfg, name)]
    assert missing == []
    with_files = OmegaConf.merge(cfg, {key: __file__ for key in OPTION_FILES.get(command, ())})
    check_options(command, with_files, [])


def test_good_values_are_read_as_the_command_uses_them():
    overrides = ["ckpt=m", "n=2.0", "steps=4", "guidance=2", "out=123"]
    cfg = compose_config("generate", overrides)
    check_options("generate", cfg, overrides)
    assert (cfg.n, cfg.guidance, cfg.out) == (2, 2.0, "123")
    assert type(cfg.n) is int and type(cfg.guidance) is float
    train = ["modality=toy", "data=toy_blobs", "modality.max_values=[32,32]", "trainer.devices=auto", "+extra.key=abc"]
    check_options("train", compose_config("train", train), train)  # a list for an int default, Lightning's own
    for off in ("false", "null"):  # a group of settings turned off (build_optimizer reads it as none)
        train = ["modality=toy", "data=toy_blobs", "optim=adamw_cosine", f"optim.lr_scheduler={off}"]
        cfg = compose_config("train", train)
        check_options("train", cfg, train)
        assert cfg.optim.lr_scheduler is None


def test_media_options_are_checked_against_the_models_own(tmp_path, capsys, tiny_bundle):
    err = one_line(capsys, ["generate", f"ckpt={tiny_bundle}", "media.max_values=abc", f"out={tmp_path / 'out'}"])
    assert err == ("diffusionkit generate: error: max_values must be a number (its default is 1000000), "
                   "got max_values=abc")
    assert not (tmp_path / "out").exists()


def test_a_validation_share_that_leaves_nothing_to_train_on_is_refused():
    with pytest.raises(UsageError, match=r"data.val_fraction=0.99 holds out all 20 items, leaving none to train on"):
        ModalityDataModule(GaussianClasses((1, 4, 4), n=20), val_fraction=0.99)


def test_the_quoting_a_refusal_suggests_reads_the_file(tmp, monkeypatch):
    picture = tmp / "it's müde (1).png"
    picture.write_bytes(b"")
    monkeypatch.setenv("HOME", str(tmp))
    overrides = ["ckpt=m", "input='~/it\\'s müde (1).png'"]
    cfg = compose_config("vary", overrides)
    check_options("vary", cfg, overrides)
    assert cfg.input == str(picture)  # the command reads the file the user meant


# --- plugin errors ----------------------------------------------------------------------------


def test_a_plugin_load_error_names_the_plugin_and_the_file(tmp_path, capsys, monkeypatch, tiny_bundle):
    def fails(self, path):
        raise RuntimeError("libfoo: chunk 'fmt ' is 3 bytes long\n  at decoder.c:12")

    monkeypatch.setattr("diffusionkit_toy.modality.ToyModality.load", fails)
    picture = tmp_path / "x.npy"
    picture.write_bytes(b"...")
    out = tmp_path / "out"
    err = one_line(capsys, ["vary", f"ckpt={tiny_bundle}", f"input={picture}", "steps=1", f"out={out}"])
    assert err == (f"diffusionkit vary: error: cannot read input={picture}: the toy plugin (ToyModality) "
                   f"failed: RuntimeError: libfoo: chunk 'fmt ' is 3 bytes long")
    assert not out.exists()


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    """An untrained tiny 1x32x32 toy model (nothing is sampled from it)."""
    from diffusionkit.build import build_diffusion_model, build_modality
    from diffusionkit.bundle import diffusion_weights, run_metadata, save_bundle

    cfg = compose_config("train", ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16",
                                   "net.attention_levels=[]", "modality.channels=1"])
    module = build_diffusion_model(cfg, build_modality(cfg), num_classes=10)
    return save_bundle(tmp_path_factory.mktemp("tiny") / "model.safetensors", diffusion_weights(module),
                       run_metadata(cfg, list("0123456789")))


# --- dataset items before training ------------------------------------------------------------


class WrongShape(Dataset):
    """A plugin author's dataset whose items are not the modality's shape."""

    classes = ["a", "b"]

    def __init__(self, **_: object) -> None:
        pass

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        return {"x": torch.zeros(1, 16, 16), "label": index % 2}


class Broken(GaussianClasses):
    def __getitem__(self, index: int) -> dict:
        raise KeyError("frames")


class Relabelled(GaussianClasses):
    def __getitem__(self, index: int) -> dict:
        return {**super().__getitem__(index), "label": 7}


@pytest.mark.parametrize("dataset, expected", [
    (GaussianClasses((1, 4, 4)), "item 0 has shape [1, 4, 4]; ToyModality expects [1, 8, 8] (channels, *spatial)"),
    (Relabelled((1, 8, 8)), "item 0 has label 7; the dataset names 2 classes, so a label is 0 to 1"),
    (Broken((1, 8, 8)), "cannot read item 0: Broken failed: KeyError: 'frames'"),
    (GaussianClasses((1, 8, 8), n=0), "has no items: nothing to train on"),
])
def test_dataset_items_are_checked_before_fitting(dataset, expected):
    with pytest.raises((UsageError, MediaError)) as refused:
        check_items(dataset, ToyModality(1, (8, 8)))
    assert str(refused.value).startswith(f"dataset {type(dataset).__name__} (data.dataset)")
    assert expected in str(refused.value) and "\n" not in str(refused.value)
    check_items(GaussianClasses((1, 8, 8)), ToyModality(1, (8, 8)))


def test_train_refuses_a_dataset_of_the_wrong_shape_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    err = one_line(capsys, ["train", *GROUPS["train"], "net.attention_levels=[]", "modality.channels=1",
                            f"data.dataset._target_={__name__}.WrongShape", f"out={out}"])
    assert err == ("diffusionkit train: error: dataset WrongShape (data.dataset): item 0 has shape [1, 16, 16]; "
                   "ToyModality expects [1, 32, 32] (channels, *spatial)")
    assert not out.exists()


# --- as a user runs it --------------------------------------------------------------------------


def console(arguments: list[str], cwd: Path, as_user: list[str] = ()) -> str:
    """Run ``diffusionkit`` as a user does (optionally as another user); the one line it prints."""
    result = subprocess.run([*as_user, sys.executable, "-m", "diffusionkit.cli", *arguments], cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr + result.stdout, \
        result.stderr[-2000:]
    assert lines[0].startswith(f"diffusionkit {arguments[0]}: error: ")
    return lines[0]


@pytest.mark.parametrize("arguments, expected", [
    (["generate", "ckpt=missing.safetensors", "n=abc"], "n must be a whole number from 1 to 100000"),
    (["train", "modality=toy", "data=toy_blobs", "modality.max_values=abc"], "modality.max_values must be a number"),
])
def test_the_console_command_prints_one_line_and_exits_2(tmp_path, arguments, expected):
    assert expected in console([*arguments, f"out={tmp_path / 'out'}"], tmp_path)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to switch to nobody")
def test_an_unprivileged_user_gets_one_line_for_a_read_only_folder():
    unprivileged = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    if subprocess.run([*unprivileged, sys.executable, "-c", "import diffusionkit"], capture_output=True).returncode:
        pytest.skip("nobody cannot read this checkout (e.g. a clone in a 0700 folder)")
    base = Path(tempfile.mkdtemp())  # not below pytest's folders: those only root may enter
    try:
        base.chmod(0o755)
        (base / "read_only").mkdir(mode=0o555)
        out = base / "read_only" / "out"
        line = console(["generate", "ckpt=missing.safetensors", f"out={out}"], base, unprivileged)
        assert line.endswith(f"out={out}: cannot write there (Permission denied); choose a writable out=")
        assert not out.exists()
    finally:
        shutil.rmtree(base)


def test_the_split_is_random_splits_own_and_a_single_item_trains_without_a_warning():
    import warnings

    from torch.utils.data import TensorDataset, random_split

    items = TensorDataset(torch.arange(37))
    for fraction in (0.0, 0.05, 0.3):  # the same items on each side as before (runs stay reproducible)
        module = ModalityDataModule(items, batch_size=4, val_fraction=fraction, seed=3)
        held = int(round(37 * fraction))
        train, val = random_split(items, [37 - held, held], generator=torch.Generator().manual_seed(3))
        assert (module.train_set.indices, module.val_set.indices) == (train.indices, val.indices)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # random_split warned that the validation part is empty
        module = ModalityDataModule(TensorDataset(torch.arange(1)), batch_size=1, val_fraction=0.05, seed=0)
    assert (len(module.train_set), len(module.val_set)) == (1, 0)
