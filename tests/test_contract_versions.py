"""Robust discovery: the contract version a plugin targets is read without importing it; a plugin
for another version is left out with its name, the reason and the fix, and the others keep
working. Also: a modality's own data option is its default data."""

import pytest

import diffusionkit.plugins as plugins
from diffusionkit.apps.plugins_cmd import plugin_table
from diffusionkit.config import available_options, compose_config
from diffusionkit.errors import UsageError
from diffusionkit.modality import CONTRACT_VERSION
from tests.scaffolded_plugin import scaffold_in_process


def with_contract(value: str) -> dict:
    return {"__init__.py": [(f"DIFFUSIONKIT_CONTRACT = {CONTRACT_VERSION}", f"DIFFUSIONKIT_CONTRACT = {value}")]}


def test_the_declared_contract_is_read_without_importing_the_package(tmp_path, monkeypatch):
    scaffold_in_process(tmp_path / "a", monkeypatch, "cvread", with_contract("7\nraise ImportError('never run')"))
    assert plugins.declared_contract("diffusionkit_cvread") == 7
    scaffold_in_process(tmp_path / "b", monkeypatch, "cvnone", {"__init__.py": [("DIFFUSIONKIT_CONTRACT", "OTHER")]})
    assert plugins.declared_contract("diffusionkit_cvnone") == 1  # states none: the first version


def test_a_plugin_for_a_newer_contract_is_left_out_with_the_fix(tmp_path, monkeypatch):
    scaffold_in_process(tmp_path, monkeypatch, "cvnew", with_contract(str(CONTRACT_VERSION + 1)))
    assert "cvnew" not in [p.name for p in plugins.discover()]
    (info,) = [p for p in plugins.discover(include_incompatible=True) if p.name == "cvnew"]
    assert plugins.contract_problem(info) == (
        f"written for plugin contract {CONTRACT_VERSION + 1}, this diffusionkit has contract {CONTRACT_VERSION}; "
        f"fix: pip install --upgrade diffusionkit")
    table = plugin_table()
    assert "INCOMPATIBLE" in next(line for line in table if line.startswith("cvnew"))
    assert f"problem: plugin 'cvnew' (cvnew) is left out: written for plugin contract {CONTRACT_VERSION + 1}" \
           in "\n".join(table)
    assert "BROKEN" not in next(line for line in table if line.startswith("toy"))
    assert "cvnew" not in available_options()["data"]
    with pytest.raises(UsageError, match=r"^modality 'cvnew' comes from plugin 'cvnew' \(cvnew\), which cannot be "
                                         r"used: written for plugin contract \d+.*pip install --upgrade diffusionkit$"):
        compose_config("train", ["modality=cvnew"])
    assert compose_config("train", ["modality=toy", "data=toy_blobs"]).modality.channels == 1


def test_an_older_or_unreadable_contract_names_the_plugin_fix(tmp_path, monkeypatch):
    scaffold_in_process(tmp_path, monkeypatch, "cvold", with_contract("0"))
    scaffold_in_process(tmp_path, monkeypatch, "cvodd", with_contract("'one'"))
    found = {p.name: plugins.contract_problem(p) for p in plugins.discover(include_incompatible=True)}
    assert found["cvold"].endswith("fix: pip install --upgrade cvold, or port it (docs/plugins.md, "
                                   "'Contract versions')")
    assert "DIFFUSIONKIT_CONTRACT in " in found["cvodd"] and found["cvodd"].endswith(
        f"fix: set DIFFUSIONKIT_CONTRACT = {CONTRACT_VERSION} in diffusionkit_cvodd/__init__.py")
    assert found["toy"] is None


def test_a_modality_s_own_data_option_is_its_default_data(tmp_path, monkeypatch):
    scaffold_in_process(tmp_path, monkeypatch, "cvdata")
    cfg = compose_config("train", ["modality=cvdata"])
    assert cfg.data.dataset._target_ == "diffusionkit_cvdata.datasets.WavesDataset"
    assert cfg.data.dataset.length == 64 and cfg.data.batch_size == 32
    chosen = compose_config("train", ["modality=cvdata", "data=folder", "data.dataset.root=/somewhere"])
    assert chosen.data.dataset._target_.endswith("FolderDataset")
