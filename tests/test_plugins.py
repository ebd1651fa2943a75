"""Plugin discovery: entry points, config folders, broken plugins and option clashes."""

from importlib.metadata import EntryPoint

import pytest

import diffusionkit.plugins as plugins
from diffusionkit.apps.plugins_cmd import plugin_table
from diffusionkit.config import compose_config


@pytest.fixture
def extra_plugin(tmp_path, monkeypatch):
    """Install (in-process) a fake plugin package whose import fails and whose conf/ offers
    data/digits (a clash with the image plugin) and data/broken_set."""
    package = tmp_path / "dk_broken_plugin"
    (package / "conf" / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('needs libfoo')\n")
    (package / "conf" / "data" / "digits.yaml").write_text("data: {}\n")
    (package / "conf" / "data" / "broken_set.yaml").write_text("# @package _global_\ndata:\n  marker: 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = plugins.entry_points
    fake = EntryPoint("broken", "dk_broken_plugin.modality:Broken", plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [*real(group=group), fake])
    return fake


def test_discovery_finds_the_image_plugin_without_importing_it():
    (image,) = [p for p in plugins.discover() if p.name == "image"]
    assert image.distribution == "diffusionkit-image"
    assert image.options["modality"] == ["image"]
    assert {"digits", "shapes"} <= set(image.options["data"])
    assert (image.conf_dir / "modality" / "image.yaml").is_file()


def test_a_broken_plugin_is_reported_by_name_and_the_others_keep_working(extra_plugin):
    table = plugin_table()
    broken = next(line for line in table if line.startswith("broken"))
    assert "BROKEN (ImportError: needs libfoo)" in broken
    image = next(line for line in table if line.startswith("image"))
    assert "BROKEN" not in image
    assert compose_config("train", ["modality=image", "data=shapes"]).modality.channels == 3
    assert compose_config("train", ["modality=image", "data=broken_set"]).data.marker == 7


def test_option_clashes_are_detected_and_name_both_owners(extra_plugin):
    clashes = [line for line in plugin_table() if line.startswith("warning")]
    # discovery order is the search-path order: the first plugin by name wins
    assert clashes == ["warning: config 'data/digits' is offered by both broken and diffusionkit-image; "
                       "broken wins, rename one of them"]


def test_config_options_lists_groups_and_names(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "b.yaml").write_text("")
    (tmp_path / "data" / "a.yaml").write_text("")
    (tmp_path / "top.yaml").write_text("")
    assert plugins.config_options(tmp_path) == {"data": ["a", "b"]}
