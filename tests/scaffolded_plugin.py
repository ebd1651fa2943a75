"""A plugin written by the scaffold and made visible to this process only (a fake entry point and
sys.path), optionally with edits: what the contract-kit tests run their checks against."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import diffusionkit.plugins as plugins
from diffusionkit.scaffold import new_plugin, placeholders


def scaffold_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                        edits: dict[str, list[tuple[str, str]]] | None = None) -> Path:
    """Write plugin ``name`` into ``tmp_path``, apply ``edits`` (file relative to the package ->
    (old, new) replacements, each of which must match) and register its entry point."""
    root = tmp_path / f"diffusionkit-{name}"
    new_plugin(name, root)
    values = placeholders(name)
    package = root / values["{{package}}"]
    for relative, replacements in (edits or {}).items():
        path = package / relative
        text = path.read_text()
        for old, new in replacements:
            assert old in text, f"{relative}: {old!r} not found"
            text = text.replace(old, new)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(root))
    real = plugins.entry_points
    entry = EntryPoint(name, f"{values['{{package}}']}.modality:{values['{{Name}}']}Modality",
                       plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [*real(group=group), entry])
    return root
