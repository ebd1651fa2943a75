"""``diffusionkit plugins new``: a complete plugin package, its name checked, nothing overwritten;
end to end: installed, its own tests pass, it trains and generates with no edit."""

import os
import subprocess
import sys
import tomllib

import pytest

from diffusionkit.cli import main
from diffusionkit.scaffold import new_plugin


def test_plugins_new_writes_a_complete_package_and_prints_the_next_commands(tmp_path, capsys):
    root = tmp_path / "my-plugin"
    assert main(["plugins", "new", "sea_level", f"dir={root}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote the plugin package {root} (13 files); next:")
    assert f"  pip install -e {root}\n" in out and "  diffusionkit plugins check sea_level\n" in out
    assert "  diffusionkit train modality=sea_level trainer.max_steps=20 out=sea_level_run\n" in out
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    package = "diffusionkit_sea_level"
    assert files == sorted([
        "README.md", "pyproject.toml", f"{package}/__init__.py", f"{package}/datasets.py",
        f"{package}/modality.py", f"{package}/plots.py", f"{package}/signal_files.py", f"{package}/conf/__init__.py",
        f"{package}/conf/data/sea_level.yaml", f"{package}/conf/experiment/sea_level_fast.yaml",
        f"{package}/conf/modality/sea_level.yaml", "tests/test_sea_level_contract.py",
        "tests/test_sea_level_signals.py"])
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "diffusionkit-sea-level"
    assert project["entry-points"]["diffusionkit.plugins"] == {"sea_level": f"{package}.modality:SeaLevelModality"}
    for path in root.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text(), path
            if path.suffix == ".py":
                compile(path.read_text(), str(path), "exec")
    contract_tests = (root / "tests" / "test_sea_level_contract.py").read_text()
    assert "class TestSeaLevelContract(ModalityContractTests):" in contract_tests


@pytest.mark.parametrize(("name", "message"), [
    ("Sensor", "plugin name 'Sensor' must be lower-case letters, digits and '_', starting with a letter"),
    ("2d", "plugin name '2d' must be"),
    ("class", "plugin name 'class' must be"),
    ("toy", "a plugin named 'toy' is already installed; choose another name"),
    ("toy_blobs", "'toy_blobs' is already a data option (data=toy_blobs); choose another name"),
])
def test_plugin_names_are_checked(tmp_path, capsys, name, message):
    assert main(["plugins", "new", name, f"dir={tmp_path / 'p'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"diffusionkit plugins: error: {message}") and "\n" not in err
    assert not (tmp_path / "p").exists()


def test_an_existing_folder_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert main(["plugins", "new", "sensor", f"dir={tmp_path / 'taken'}"]) == 2
    assert capsys.readouterr().err.strip() == (f"diffusionkit plugins: error: '{tmp_path / 'taken'}' already exists; "
                                               f"choose a new dir= (nothing was written)")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]


def test_a_failed_write_is_one_line_and_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    written = []
    real_write = type(tmp_path).write_text

    def write_then_fail(path, *args, **kwargs):
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        written.append(path)
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(type(tmp_path), "write_text", write_then_fail)
    assert main(["plugins", "new", "sensor", f"dir={tmp_path / 'full'}"]) == 2
    assert capsys.readouterr().err.strip() == (f"diffusionkit plugins: error: cannot write the plugin into "
                                               f"'{tmp_path / 'full'}': No space left on device; choose a "
                                               f"writable dir= (nothing was left behind)")
    assert len(written) == 3 and not (tmp_path / "full").exists()


@pytest.mark.slow
def test_scaffold_install_test_train_and_generate_with_no_edit(tmp_path):
    """The bar: plugins new -> install -> its own tests -> train -> generate. Installed with
    ``pip install --target`` into a folder on PYTHONPATH (a regular, non-editable install, so the
    package data is proven too), seen only by these subprocesses, not by other tests running now."""
    name, root, site = "scaffoldprobe", tmp_path / "diffusionkit-scaffoldprobe", tmp_path / "site"
    new_plugin(name, root)
    # site first; the rest of PYTHONPATH stays, so a checkout on it (a worktree) is the diffusionkit under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    env.pop("DIFFUSIONKIT_PLUGINS", None)  # the plugin just installed must be visible (the core's session hides others)

    def run(*args: str, cwd=tmp_path) -> str:
        done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    run("-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(site),
        str(root))
    assert (site / "diffusionkit_scaffoldprobe" / "conf" / "data" / f"{name}.yaml").is_file()
    tests = run("-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "not slow", "tests", cwd=root)
    assert "14 passed, 1 deselected" in tests
    assert any(line.startswith(name) and f"{name}: data:" not in line and "BROKEN" not in line
               for line in run("-m", "diffusionkit.cli", "plugins", "list").splitlines())
    run("-m", "diffusionkit.cli", "train", f"modality={name}", "trainer.max_steps=20", "out=run")
    assert (tmp_path / "run" / "model.safetensors").is_file()
    run("-m", "diffusionkit.cli", "generate", "ckpt=run/model.safetensors", "n=4", "out=generated")
    written = sorted(p.name for p in (tmp_path / "generated").iterdir())
    assert written == ["000_sine.csv", "000_sine.png", "001_square.csv", "001_square.png", "002_triangle.csv",
                       "002_triangle.png", "003_sawtooth.csv", "003_sawtooth.png", "grid.png", "recipe.yaml"]
