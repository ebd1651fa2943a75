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
         "config modality/{n}", "data {n}", "round trip", "bad files", "rendering", "optional methods"]


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
    assert set(failures) == {"data kitbroken", "round trip", "bad files", "rendering", "optional methods"}
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
    assert "  PASS  round trip: " in "\n".join(out) and out[-1] == "10 passed, 1 failed"
    assert any(line.startswith("  FAIL  data kitcli: values span") for line in out)


def test_plugins_check_usage_errors(capsys):
    assert main(["plugins", "check", "image", "fast=yes"]) == 2
    assert "unknown argument 'fast=yes'" in capsys.readouterr().err
    assert main(["plugins", "check", "nothing_here"]) == 2
    assert "no plugin 'nothing_here' is installed" in capsys.readouterr().err


def test_rendered_media_problems_are_named():
    from diffusionkit.modality import Rendered
    from diffusionkit.testing.checks_media import rendered_problem

    assert rendered_problem(Rendered("audio", np.zeros(8, np.float32), rate=16000)) is None
    assert rendered_problem(Rendered("audio", np.full(8, 2.0, np.float32), rate=16000)) == \
        "Rendered('audio').data must be finite and within [-1, 1]"
    assert rendered_problem(Rendered("video", np.zeros((1, 2, 3, 4, 4), np.uint8))) == \
        "Rendered('video') needs its rate (samples or frames per second), got 0"
    assert rendered_problem(Rendered("image", np.zeros((4, 4, 2), np.uint8))) == \
        "Rendered('image').data has 2 colour channels; use 1, 3 or 4"
    assert rendered_problem("x") == "render() gave a str, expected diffusionkit.modality.Rendered"
