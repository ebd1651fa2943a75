"""Packaging: a light top-level import and an entry point that names the modality."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

from diffusionkit.modality import Modality

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_import_does_not_load_torch():
    """``import diffusionkit_image`` is cheap: it exposes __version__ and imports no torch."""
    code = "import sys, diffusionkit_image as d; print(d.__version__, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[1] == "False"


def test_entry_point_names_the_image_modality():
    """pyproject's ``diffusionkit.plugins`` entry point resolves to a Modality subclass."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["diffusionkit.plugins"]["image"]
    module, name = target.split(":")
    cls = getattr(import_module(module), name)
    assert issubclass(cls, Modality) and cls.__name__ == "ImageModality"
    assert (ROOT / "diffusionkit_image" / "conf" / "modality" / "image.yaml").is_file()
