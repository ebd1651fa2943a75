"""The contract kit (diffusionkit.testing) and ``plugins check``: a scaffolded plugin passes, and
plugins broken on purpose fail the right checks with words their authors can act on."""

import numpy as np
import pytest

from diffusionkit.cli import main
from diffusionkit.testing import ContractSettings, PluginUnderTest, run_checks
from diffusionkit.testing.checks_media import check_dataset_items
from diffusionkit.testing.contract import expect_passed
from tests.scaffolded_plugin import scaffold_in_process

LOUD = {"datasets.py": [("wave = amplitude *", "wave = 9 * amplitude *")]}  # items far beyond [-1, 1]
QUICK = ["contract version", "entry point", "config options", "config data/{n}", "config experiment/{n}_fast",
         "config modality/{n}", "data {n}", "round trip", "bad files", "rendering", "long items", "optional methods"]
#: the scaffold's signals as numpy values, before they are written or plotted
SAVED_VALUES = "values = x.detach().float().clamp(-1.0, 1.0).cpu().numpy()"
RENDERED_VALUES = "plot_grid(batch.detach().float().clamp(-1.0, 1.0).cpu().numpy())"


def findings(tmp_path, monkeypatch, name, edits=None, **settings) -> dict[str, tuple[bool, str]]:
    scaffold_in_process(tmp_path, monkeypatch, name, edits)
    subject = PluginUnderTest(name, tmp_path / "work", ContractSettings(**settings))
    return {r.check: (r.passed, r.detail) for r in run_checks(subject)}


def test_a_scaffolded_plugin_passes_every_quick_check(tmp_path, monkeypatch):
    found = findings(tmp_path, monkeypatch, "kitgood", data_overrides={"kitgood": ["data.dataset.per_class=2"]})
    assert list(found) == [c.format(n="kitgood") for c in QUICK]
    assert all(ok for ok, _ in found.values()), found
    assert found["data kitgood"][1].startswith("8 items [1, 64] float32 in [")
    assert found["round trip"][1].endswith("RMSE 0.0000 (limit 0.1)")
    assert found["bad files"][1].startswith("4 bad files")
    assert found["long items"][1].startswith("items of 96 steps along time_axis 0 (declared 64): save wrote "
                                             "long.csv 1.5")


def test_broken_media_code_fails_the_checks_that_cover_it(tmp_path, monkeypatch):
    edits = {
        "signal_files.py": [("except (OSError, UnicodeDecodeError) as err:", "except OSError as err:")],
        "datasets.py": [("wave = amplitude *", "wave = 3 * amplitude *")],
        "modality.py": [('return Rendered("image", plot_grid(', 'return Rendered("image", 1.0 * plot_grid('),
                        ("return [write_csv(values.T, Path(f\"{stem}.csv\")), write_png(plot(values), "
                         "Path(f\"{stem}.png\"))]",
                         "return [write_png(plot(values), Path(f\"{stem}.png\")), write_csv(values.T, "
                         "Path(f\"{stem}.csv\"))]")],
    }
    found = findings(tmp_path, monkeypatch, "kitbroken", edits)
    failures = {check: detail for check, (ok, detail) in found.items() if not ok}
    assert set(failures) == {"data kitbroken", "round trip", "bad files", "rendering", "long items", "optional methods"}
    assert "model space is [-1, 1]" in failures["data kitbroken"] and "scale the data" in failures["data kitbroken"]
    assert failures["round trip"].startswith("the sample file from_dataset.png has a suffix that file_extensions "
                                             "('.csv',) does not list")
    assert "load('garbage.csv') raised UnicodeDecodeError" in failures["bad files"]
    assert "raise diffusionkit.modality.MediaError" in failures["bad files"]
    assert failures["rendering"] == "Rendered('image').data is float64 with 3 axes; expected uint8 with 3"
    assert "raised UnicodeDecodeError" in failures["optional methods"]  # the default roundtrip() reads the PNG


def test_a_data_config_without_its_package_line_is_named(tmp_path, monkeypatch):
    found = findings(tmp_path, monkeypatch, "kitnoheader", {"conf/data/kitnoheader.yaml": [("# @package _global_\n",
                                                                                               "")]})
    ok, detail = found["config data/kitnoheader"]
    assert not ok and detail.startswith("its first line must be '# @package _global_'")
    assert detail.endswith("(see: diffusionkit train modality=kitnoheader data=kitnoheader --cfg job)")


def test_a_plugin_that_cannot_be_imported_stops_after_the_entry_point(tmp_path, monkeypatch):
    found = findings(tmp_path, monkeypatch, "kitnoimport", {"modality.py": [("import torch\n",
                                                                              "import torch\nimport no_such_lib\n")]})
    assert list(found) == ["contract version", "entry point"]
    ok, detail = found["entry point"]
    assert not ok and "ModuleNotFoundError: No module named 'no_such_lib'" in detail
    assert "python -c 'import diffusionkit_kitnoimport.modality'" in detail


def test_expect_passed_fails_a_test_with_every_failure(tmp_path, monkeypatch):
    scaffold_in_process(tmp_path, monkeypatch, "kitfail", LOUD)
    subject = PluginUnderTest("kitfail", tmp_path / "work")
    with pytest.raises(pytest.fail.Exception, match=r"data kitfail: values span \[-\d"):
        expect_passed(check_dataset_items(subject))


def test_plugins_check_prints_each_finding_and_exits_1_on_failure(tmp_path, monkeypatch, capsys):
    scaffold_in_process(tmp_path, monkeypatch, "kitcli", LOUD)
    assert main(["plugins", "check", "kitcli"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("checking plugin 'kitcli' (kitcli ?, diffusionkit_kitcli.modality:KitcliModality)")
    assert "  PASS  round trip: " in "\n".join(out) and out[-1] == "11 passed, 1 failed"
    assert any(line.startswith("  FAIL  data kitcli: values span") for line in out)


def test_plugins_check_usage_errors(capsys):
    assert main(["plugins", "check", "image", "fast=yes"]) == 2
    assert "unknown argument 'fast=yes'" in capsys.readouterr().err
    assert main(["plugins", "check", "nothing_here"]) == 2
    assert "no plugin 'nothing_here' is installed" in capsys.readouterr().err


def test_rendered_media_problems_are_named(tmp_path):
    from diffusionkit.media import Layout, SummaryMethod
    from diffusionkit.modality import Rendered
    from diffusionkit.testing.checks_media import logging_problem, rendered_problem

    sound = SummaryMethod("add_audio", rate_option="sample_rate", layout=Layout("float32", 1, bounds=(-1.0, 1.0)))
    picture = SummaryMethod("add_image", {"dataformats": "HWC"}, layout=Layout("uint8", 3, channel_axis=-1))
    clip = SummaryMethod("add_images", layout=Layout("uint8", 5))
    assert rendered_problem(Rendered("audio", np.zeros(8, np.float32), 16000, sound, time_axis=0)) is None
    assert rendered_problem(Rendered("audio", np.full(8, 2.0, np.float32), 16000, sound, time_axis=0)) == \
        "Rendered('audio').data must be finite and within [-1, 1]"
    assert rendered_problem(Rendered("video", np.zeros((1, 2, 3, 4, 4), np.uint8), writer=clip, time_axis=1)) == \
        "Rendered('video') needs its rate (steps per second along its time_axis 1), got 0"
    assert rendered_problem(Rendered("video", np.zeros((1, 2, 3, 4, 4), np.uint8), 8, clip, time_axis=5)) == \
        "Rendered('video').time_axis 5 is not an axis of its data (5 axes)"
    assert rendered_problem(Rendered("image", np.zeros((4, 4, 2), np.uint8), writer=picture)) == \
        "Rendered('image').data has 2 colour channels; use 1, 3 or 4"
    assert rendered_problem(Rendered("image", np.zeros((4, 4, 3), np.uint8))).startswith(
        "Rendered('image') has no writer, so no logger shows it; give each Rendered the writer that logs it")
    assert rendered_problem("x") == "render() gave a str, expected diffusionkit.modality.Rendered"
    # what the plugin declares is logged to a real SummaryWriter; a writer that fails there is named
    assert logging_problem([Rendered("image", np.zeros((4, 4, 3), np.uint8), writer=picture),
                            Rendered("audio", np.zeros(8, np.float32), 16000, sound, time_axis=0)], tmp_path) is None
    assert next(tmp_path.glob("events.out.tfevents.*")).stat().st_size > 100
    assert logging_problem([Rendered("image", np.zeros((4, 4, 3), np.uint8), writer=SummaryMethod("add_figure"))],
                           tmp_path).startswith("Rendered('image')'s writer SummaryMethod raised ")
    assert logging_problem([Rendered("image", np.zeros((4, 4, 3), np.uint8), writer=SummaryMethod("show"))],
                           tmp_path) == ("Rendered('image')'s writer SummaryMethod does not accept TensorBoard's "
                                         "SummaryWriter")


# ---------------------------------------------------------------- a constructor that raises
SOUNDFONT = ("KitctorModality needs a soundfont: none found in /usr/share/sounds/sf2 (set modality.soundfont=PATH)\n"
             "see the README: 'Sound fonts'")
RAISING_CONSTRUCTOR = {"modality.py": [("super().__init__(channels, (length,))",
                                        f"raise ValueError({SOUNDFONT!r})")]}


def test_plugins_check_shows_a_constructors_root_cause_once_and_skips_what_follows(tmp_path, monkeypatch, capsys):
    scaffold_in_process(tmp_path, monkeypatch, "kitctor", RAISING_CONSTRUCTOR)
    assert main(["plugins", "check", "kitctor"]) == 1
    out = capsys.readouterr().out
    assert ("  FAIL  config modality/kitctor: diffusionkit_kitctor.modality.KitctorModality(...) raised ValueError: "
            f"{SOUNDFONT.replace(chr(10), ' ')} (see: diffusionkit train modality=kitctor data=kitctor "
            "--cfg job)") in out
    assert out.count("FAIL") == 1 and out.count("needs a soundfont") == 1 and "InstantiationException" not in out
    assert ("  SKIP  dataset items, roundtrip, bad files, rendering, long items, optional methods: not run: it needs "
            "the modality (modality=kitctor data=kitctor), which cannot be built (the failure above)") in out
    assert out.rstrip().endswith("5 passed, 1 failed, 6 skipped")


def test_the_root_cause_is_the_innermost_exception_on_one_line():
    from diffusionkit.testing.failures import describe_error

    try:
        try:
            {}["soundfont"]
        except KeyError as err:
            raise RuntimeError("cannot set up\nthe piano roll") from err
    except RuntimeError as err:
        assert describe_error(err) == "KeyError: 'soundfont'"
    assert describe_error(ValueError("two\n  lines ")) == "ValueError: two lines"
    assert describe_error(ValueError()) == "ValueError"


def test_a_blocked_check_is_a_skipped_test(tmp_path, monkeypatch):
    from hydra.errors import InstantiationException

    from diffusionkit.testing import run_check
    from diffusionkit.testing.checks_media import check_rendering
    from diffusionkit.testing.contract import run_as_test
    from diffusionkit.testing.tiny_run import check_train_and_sample

    scaffold_in_process(tmp_path, monkeypatch, "kitctorpy", {"modality.py": RAISING_CONSTRUCTOR["modality.py"]})
    subject = PluginUnderTest("kitctorpy", tmp_path / "work")
    with pytest.raises(InstantiationException, match="needs a soundfont"):  # the first to need it: the plugin's error
        check_dataset_items(subject)
    with pytest.raises(pytest.skip.Exception, match=r"not run: it needs the modality .*raised ValueError: Kitc"):
        run_as_test(check_rendering, subject)
    [tiny_run] = run_check(check_train_and_sample, subject)  # no training run on a modality that cannot be built
    assert tiny_run.skipped and tiny_run.detail.startswith("not run: it needs the modality (modality=kitctorpy")


# ---------------------------------------------------------------- items longer along time_axis
def long_items_finding(tmp_path, monkeypatch, name, edits) -> tuple[bool, str]:
    scaffold_in_process(tmp_path, monkeypatch, name, edits)
    from diffusionkit.testing.checks_long import check_long_items

    [result] = check_long_items(PluginUnderTest(name, tmp_path / "work"))
    return result.passed, result.detail


def test_a_plugin_whose_save_crops_long_items_fails(tmp_path, monkeypatch):
    crop = SAVED_VALUES + "[:, : self.spatial_size[0]]"
    ok, detail = long_items_finding(tmp_path, monkeypatch, "kitcropsave", {"modality.py": [(SAVED_VALUES, crop)]})
    assert not ok and detail.startswith("save() of an item of 96 steps along time_axis 0 (declared 64) wrote long.csv "
                                        "of ")
    assert "hardly more than" in detail and "it crops or squeezes the item" in detail
    assert detail.endswith("fix: take the length from x.shape (not from the modality's shape) in save, save_grid and "
                           "render, so that what `extend` makes is written and shown in full")


@pytest.mark.parametrize("end", ["first", "last"])
def test_a_plugin_whose_pictures_crop_long_items_fails(tmp_path, monkeypatch, end):
    crop = {"first": "[..., : self.spatial_size[0]]", "last": "[..., -self.spatial_size[0]:]"}[end]
    cropped = RENDERED_VALUES.replace(".numpy())", f".numpy(){crop})")
    ok, detail = long_items_finding(tmp_path, monkeypatch, f"kitcrop{end}", {"modality.py": [(RENDERED_VALUES,
                                                                                                cropped)]})
    assert not ok
    assert detail.startswith(f"save_grid() of items of 96 steps along time_axis 0 (declared 64) writes long_grid.png "
                             f"byte for byte as for their {end} steps alone: the rest is cropped; fix: ")


class TimedToy:
    """A ToyModality along time axis 0 whose render gives audio: cropped to the declared length, or not."""

    @staticmethod
    def make(crop: bool):
        from diffusionkit.media import Layout, SummaryMethod
        from diffusionkit.modality import Rendered
        from tests.toy_modality import ToyModality

        sound = SummaryMethod("add_audio", rate_option="sample_rate", layout=Layout("float32", 1, bounds=(-1.0, 1.0)))

        class Timed(ToyModality):
            time_axis = 0

            def render(self, batch):
                steps = self.spatial_size[0] if crop else batch.shape[-1]
                return Rendered("audio", batch[:, 0, :steps].reshape(-1).clamp(-1, 1).numpy(), 8000, sound, 0)

        return Timed(1, (32,))


@pytest.mark.parametrize("crop", [False, True])
def test_timed_media_must_grow_with_long_items(tmp_path, crop):
    import torch

    from diffusionkit.testing.checks_long import lengthen, render_part

    items = lengthen(torch.linspace(-1, 1, 64).reshape(2, 1, 32), time_axis=0)
    assert items.long.shape == (2, 1, 48) and torch.equal(items.head, torch.linspace(-1, 1, 64).reshape(2, 1, 32))
    problem, seen = render_part(TimedToy.make(crop), items, tmp_path)
    if crop:
        assert problem.startswith("render() of items of 48 steps along time_axis 0 (declared 32) gives audio of 64 "
                                  "steps along its time_axis 0, hardly more than 64 for their declared length: it crops or squeezes them")
    else:
        assert problem is None and seen == "render gives audio [96]"


# ---------------------------------------------------------------- roundtrip() and --help
def test_a_roundtrip_that_returns_no_floats_fails_with_the_fix(tmp_path, monkeypatch):
    method = ("    def roundtrip(self, path, stem):\n"
              "        return {\"rmse\": torch.tensor(0.5), \"frames\": 64}\n\n    def envelope(")
    found = findings(tmp_path, monkeypatch, "kitrt", {"modality.py": [("    def envelope(", method)]})
    ok, detail = found["optional methods"]
    assert not ok and detail.startswith("roundtrip() must return finite floats by name; it gave 'rmse': tensor(0.5000) "
                                        "(Tensor), 'frames': 64 (int); fix: return a non-empty dict of measures by "
                                        "name, each a finite Python float, e.g. {'snr_db': float(snr)}")


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"], ["check", "--help"]])
def test_plugins_help_prints_the_usage(capsys, args):
    assert main(["plugins", *args]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: diffusionkit plugins list | new NAME [dir=PATH] | check NAME [train=true]\n")
    assert "check NAME [train=true]   check an installed plugin against the contract" in out and err == ""


def test_a_data_option_whose_data_is_not_on_this_machine_is_skipped(tmp_path, monkeypatch):
    """A dataset that raises DataUnavailable (a system package not installed) is not the plugin's
    fault: its checks are skipped, and the media checks use another data option."""
    from diffusionkit.scaffold import placeholders

    root = scaffold_in_process(tmp_path, monkeypatch, "kitpkg")
    package = root / placeholders("kitpkg")["{{package}}"]
    (package / "missing_data.py").write_text(
        "from diffusionkit.modality import DataUnavailable\n\n\n"
        "class Missing:\n"
        "    def __init__(self, **options):\n"
        "        raise DataUnavailable(\"kits '/usr/share/kits' not found: apt-get install kits\")\n")
    (package / "conf" / "data" / "aaa_kits.yaml").write_text(
        f"# @package _global_\ndata:\n  dataset:\n    _target_: {package.name}.missing_data.Missing\n")
    subject = PluginUnderTest("kitpkg", tmp_path / "work", ContractSettings(
        data_overrides={"kitpkg": ["data.dataset.per_class=2"]}))
    assert subject.data_options[0] == "aaa_kits" and subject.main_data == "kitpkg"
    found = {r.check: r for r in run_checks(subject)}
    assert found["config data/aaa_kits"].status == "SKIP"
    assert "data is not on this machine: kits '/usr/share/kits' not found: apt-get install kits" in \
        found["config data/aaa_kits"].detail
    assert not any(r.failed for r in found.values()), {c: r.detail for c, r in found.items() if r.failed}
    assert found["round trip"].passed


def test_declarations_the_core_cannot_use_are_named():
    from diffusionkit.media import FileWidgets, Widget
    from diffusionkit.testing.checks_media import declaration_problem
    from tests.toy_modality import ToyModality

    class Declared(ToyModality):
        pass

    assert declaration_problem(Declared(1, (8,))) is None
    Declared.steps_are_items = True
    assert declaration_problem(Declared(1, (8,))) == ("steps_are_items is True but time_axis is None; name the axis "
                                                       "whose steps are items")
    Declared.time_axis, Declared.file_widgets = 0, FileWidgets("sheet", Widget("File"), Widget("File"))
    assert declaration_problem(Declared(1, (8,))) is None
    Declared.file_widgets = "Audio"
    assert declaration_problem(Declared(1, (8,))).startswith("file_widgets is 'Audio'; declare diffusionkit.media.")
