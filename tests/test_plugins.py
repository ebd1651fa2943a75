"""Plugin discovery: entry points, config folders, broken plugins and option clashes."""

from importlib.metadata import EntryPoint

import pytest

import diffusionkit.plugins as plugins
from diffusionkit.apps.plugins_cmd import plugin_table
from diffusionkit.config import compose_config


@pytest.fixture
def extra_plugin(tmp_path, monkeypatch):
    """Install (in-process) a fake plugin package whose import fails and whose conf/ offers
    data/toy_blobs (a clash with the toy plugin) and data/broken_set."""
    package = tmp_path / "dk_broken_plugin"
    (package / "conf" / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('needs libfoo')\n")
    (package / "conf" / "data" / "toy_blobs.yaml").write_text("data: {}\n")
    (package / "conf" / "data" / "broken_set.yaml").write_text("# @package _global_\ndata:\n  marker: 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = plugins.entry_points
    fake = EntryPoint("broken", "dk_broken_plugin.modality:Broken", plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [*real(group=group), fake])
    return fake


def test_discovery_finds_the_toy_plugin_without_importing_it():
    (toy,) = [p for p in plugins.discover() if p.name == "toy"]
    assert toy.distribution == "diffusionkit-toy"
    assert toy.options["modality"] == ["toy", "toy_1d"]
    assert toy.options["data"] == ["toy_blobs"]
    assert (toy.conf_dir / "modality" / "toy.yaml").is_file()


def test_a_broken_plugin_is_reported_by_name_and_the_others_keep_working(extra_plugin):
    table = plugin_table()
    broken = next(line for line in table if line.startswith("broken"))
    assert "BROKEN (ImportError: needs libfoo)" in broken
    toy = next(line for line in table if line.startswith("toy"))
    assert "BROKEN" not in toy
    assert compose_config("train", ["modality=toy", "data=toy_blobs"]).modality.channels == 1
    assert compose_config("train", ["modality=toy", "data=broken_set"]).data.marker == 7


def test_option_clashes_are_detected_and_name_both_owners(extra_plugin):
    clashes = [line for line in plugin_table() if line.startswith("warning")]
    # discovery order is the search-path order: the first plugin by name wins
    assert clashes == ["warning: config 'data/toy_blobs' is offered by both broken and diffusionkit-toy; "
                       "broken wins, rename one of them"]


def test_config_options_lists_groups_and_names(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "b.yaml").write_text("")
    (tmp_path / "data" / "a.yaml").write_text("")
    (tmp_path / "top.yaml").write_text("")
    assert plugins.config_options(tmp_path) == {"data": ["a", "b"]}


def test_data_made_for_another_plugins_modality_is_named_with_the_choices(monkeypatch):
    """``train modality=pictures data=clips`` (another plugin's data) is one line naming both plugins'
    data; a data-only plugin and the core's ``folder`` go with any modality."""
    from omegaconf import OmegaConf

    import diffusionkit.config as config

    def plugin(name: str, package: str, **options: list[str]) -> plugins.PluginInfo:
        return plugins.PluginInfo(name, f"{package}.modality:M", package, "1", None, dict(options))

    monkeypatch.setattr(config, "discover", lambda: [
        plugin("pics", "pics_pkg", modality=["pictures"], data=["photos"]),
        plugin("film", "film_pkg", modality=["film"], data=["clips"]),
        plugin("extra", "extra_pkg", data=["more_photos"])])
    cfg = OmegaConf.create({"modality": {"_target_": "pics_pkg.modality.PicturesModality"}})
    line = config.data_made_for_another_modality(cfg, ["modality=pictures", "data=clips"])
    assert line == ("data=clips is the film plugin's, made for modality=film, not for this modality "
                    f"(PicturesModality); choose that modality, or data= one made for this one: photos, "
                    f"{', '.join(config.core_options()['data'])}")
    for fine in ("photos", "more_photos", "folder", "nowhere"):
        assert config.data_made_for_another_modality(cfg, [f"data={fine}"]) is None
