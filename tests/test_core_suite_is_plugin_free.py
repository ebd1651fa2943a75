"""The core's tests need no built-in plugin: they run against the test-only toy plugin
(tests/plugins/diffusionkit-toy). `make test` runs this folder with DIFFUSIONKIT_PLUGINS=toy, so a
test that composes a built-in plugin's configs fails there; this check also catches imports of a
built-in plugin's package, which the environment variable cannot hide."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import diffusionkit.plugins as plugins

TESTS = Path(__file__).resolve().parent
BUILT_IN = sorted(p.name.removeprefix("diffusionkit-") for p in (TESTS.parent / "plugins").glob("diffusionkit-*"))


def core_test_files() -> list[Path]:
    return sorted(p for p in TESTS.glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_the_built_in_plugins_are_known():
    assert {"audio", "image", "video"} <= set(BUILT_IN)


def test_no_core_test_imports_a_built_in_plugin():
    packages = {f"diffusionkit_{name}" for name in BUILT_IN}
    found = {f"{path.name}: {module}" for path in core_test_files() for module in imported_modules(path)
             if module.split(".")[0] in packages}
    assert found == set()


def test_no_core_test_chooses_a_built_in_modality():
    choice = re.compile(rf"""["']modality=({"|".join(BUILT_IN)})\b""")
    found = [f"{path.name}:{number}" for path in core_test_files()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if choice.search(line)]
    assert found == []


def test_discovery_shows_only_the_plugins_named_in_the_environment(monkeypatch):
    monkeypatch.setenv(plugins.VISIBLE_PLUGINS_ENV, "toy")
    assert [p.name for p in plugins.discover()] == ["toy"]
    monkeypatch.setenv(plugins.VISIBLE_PLUGINS_ENV, " toy , no_such_plugin,")
    assert [p.name for p in plugins.discover()] == ["toy"]
    monkeypatch.setenv(plugins.VISIBLE_PLUGINS_ENV, "no_such_plugin")
    assert plugins.discover() == []
    monkeypatch.setenv(plugins.VISIBLE_PLUGINS_ENV, "")
    assert "toy" in [p.name for p in plugins.discover()]
