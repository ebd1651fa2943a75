"""The studio's handlers without a browser: operations through the engine and the page's
handlers, caching by content, one-line errors identical to the CLI's, keeping takes, and that
every file stays inside the output folder. A tiny untrained audio model; a few steps per request."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import yaml

pytest.importorskip("gradio", reason="the studio's optional extra (gradio) is not installed")

from diffusionkit.apps.studio import keep_files_inside, studio_folder  # noqa: E402
from diffusionkit.apps.studio.engine import Limits, Studio  # noqa: E402
from diffusionkit.apps.studio.page import FIELDS, Page, error_text  # noqa: E402
from diffusionkit.apps.studio.settings import parse_media_options  # noqa: E402
from diffusionkit.apps.studio.shelf import ModelShelf, recent_runs  # noqa: E402
from diffusionkit.apps.studio.widgets import PLAIN, widgets_of  # noqa: E402
from diffusionkit.cli import main  # noqa: E402
from diffusionkit.errors import UsageError  # noqa: E402
from studio_model import CLASSES, RATE, drum_wav, tiny_audio_bundle  # noqa: E402

FAST = {"steps": 2, "seed": 0}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio_files")
    corrupt = folder / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + os.urandom(64))
    silent = folder / "silent.wav"
    sf.write(silent, [0.0] * 16000, 16000)
    empty = folder / "empty.wav"
    empty.write_bytes(b"")
    text = folder / "notes.txt"
    text.write_text("not a sound\n")
    return SimpleNamespace(bundle=tiny_audio_bundle(folder / "run"), kick=drum_wav(folder / "kick.wav"),
                           snare=drum_wav(folder / "snare.wav", seconds=0.5), corrupt=corrupt, silent=silent,
                           empty=empty, text=text, folder=folder)


@pytest.fixture
def studio(files, tmp_path):
    shelf = ModelShelf(tmp_path / "runs", extra=[str(files.bundle)])
    shelf.select(str(files.bundle))
    return Studio(tmp_path / "out", shelf, Limits(upload_bytes=1 << 20, items=8))


def page_values(page: Page, operation: str, first=None, second=None, **fields) -> list:
    """The values the page's Run button sends, for the audio widgets."""
    values = {**page.defaults(operation), **FAST, **fields}
    row = [values.get(name) for name in FIELDS]
    index = page.kinds.index("audio")
    firsts = [str(first) if first and i == index else None for i in range(len(page.kinds))]
    seconds = [str(second) if second and i == index else None for i in range(len(page.kinds))]
    return [*row, "", *firsts, *seconds, []]


def cli_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err.strip()


# --- operations ------------------------------------------------------------------------------


def test_vary_writes_n_wavs_at_the_models_rate_with_a_recipe(studio, files):
    take = studio.run("vary", {"n": 3, "strength": 0.4, "label": "auto", **FAST}, {"input": files.kick})
    assert take.number == 1 and take.folder == studio.out / "takes" / "001_vary"
    assert [[p.name for p in item] for item in take.items] == [
        [f"variation_{i:03d}.wav", f"variation_{i:03d}.png"] for i in range(3)]
    for item in take.items:
        info = sf.info(item[0])
        assert info.samplerate == RATE and info.frames == 16128
    recipe = yaml.safe_load(take.recipe.read_text())
    assert recipe["studio_operation"] == "vary"
    assert recipe["command"]["n"] == 3 and recipe["command"]["strength"] == 0.4
    assert recipe["inputs"]["input"]["file"] == str(files.kick)
    assert recipe["label_inferred"] in CLASSES and take.note.startswith("the model hears the input as")


def test_a_take_notes_that_the_input_sounds_past_the_clip_the_model_hears(studio, files, tmp_path):
    rate = 16000
    t = np.arange(3 * rate) / rate
    long = tmp_path / "two hits.wav"
    sf.write(long, 0.5 * np.sin(2 * np.pi * 200 * t) * (np.exp(-t / 0.1) + np.exp(-np.clip(t - 2, 0, None) / 0.1) * (t >= 2)),
             rate)
    take = studio.run("vary", {"n": 1, "label": "auto", **FAST}, {"input": long})
    assert f"input={long}: it is 3.00 s long and the model hears a" in take.note
    assert take.note.startswith("the model hears the input as")
    short = studio.run("vary", {"n": 1, "label": "auto", **FAST}, {"input": files.kick})
    assert "note" not in short.note and "long" not in short.note


def test_every_operation_makes_its_items(studio, files):
    counts = {}
    for operation, settings, inputs in (
        ("generate", {"n": 2, "label": "snare"}, {}),
        ("convert", {"n": 2, "target": "snare", "method": "sdedit"}, {"input": files.kick}),
        ("convert", {"n": 3, "target": "clap", "method": "invert"}, {"input": files.kick}),
        ("inpaint", {"n": 2, "start": 0.5, "end": 0.75, "label": None}, {"input": files.kick}),
        ("extend", {"n": 1, "context": 0.5, "times": 1, "label": None}, {"input": files.kick}),
        ("interpolate", {"n": 3, "strength": 0.5, "label": None}, {"a": files.kick, "b": files.snare}),
        ("roundtrip", {}, {"input": files.kick}),
    ):
        take = studio.run(operation, {**settings, **FAST}, inputs)
        counts[take.folder.name] = [p.name for p in take.items[0]], len(take.items)
    assert counts == {
        "001_generate": (["000_snare.wav", "000_snare.png"], 2),
        "002_convert": (["snare_000.wav", "snare_000.png"], 2),
        "003_convert": (["clap_000.wav", "clap_000.png"], 1),  # invert is deterministic: one
        "004_inpaint": (["inpainted_000.wav", "inpainted_000.png"], 2),
        "005_extend": (["extended_000.wav", "extended_000.png"], 1),
        "006_interpolate": (["000_t0.00.wav", "000_t0.00.png"], 3),
        "007_roundtrip": (["roundtrip_kick.png", "roundtrip_kick.wav"], 1),
    }
    assert sf.info(studio.takes[5].items[0][0]).frames == 16128 + 32 * 256  # one window past the end
    assert "snr_db" in studio.takes[7].note


def test_an_input_is_read_and_its_class_inferred_once_per_content(studio, files, tmp_path, monkeypatch):
    module = studio.shelf.model().module
    calls = []
    original = module.infer_labels
    monkeypatch.setattr(module, "infer_labels", lambda x: calls.append(1) or original(x))
    settings = {"n": 1, "strength": 0.3, "label": "auto", **FAST}
    studio.run("vary", settings, {"input": files.kick})
    copy = tmp_path / "same_sound_other_name.wav"
    copy.write_bytes(files.kick.read_bytes())
    studio.run("vary", {**settings, "seed": 1}, {"input": copy})
    assert calls == [1]
    assert (studio.cache.misses, studio.cache.hits) == (2, 2)  # the item and its label, each once
    studio.run("vary", settings, {"input": files.snare})
    assert calls == [1, 1]


# --- one-line errors, the same as the CLI's ----------------------------------------------------


def test_unknown_target_is_the_clis_line(studio, files, capsys, tmp_path):
    page = Page(studio, [])
    status = page.run("convert", *page_values(page, "convert", files.kick, target="banjo"))[0]
    expected = cli_error(capsys, ["convert", f"ckpt={files.bundle}", f"input={files.kick}", "target=banjo",
                                  "steps=2", f"out={tmp_path / 'cli'}"])
    assert status == expected == ("diffusionkit convert: error: unknown label 'banjo'; this model's classes: "
                                  + ", ".join(CLASSES))


@pytest.mark.parametrize("name, expected", [
    ("corrupt", "cannot read audio"),
    ("silent", "is silent"),
    ("empty", "the file is empty (0 bytes)"),
    ("text", "cannot read"),
])
def test_bad_uploads_are_the_clis_line_and_the_studio_keeps_working(studio, files, capsys, tmp_path, name, expected):
    page = Page(studio, [])
    path = getattr(files, name)
    status = page.run("vary", *page_values(page, "vary", path))[0]
    assert "\n" not in status and expected in status
    if name != "empty":  # the CLI refuses an empty file while reading it, the studio before: same reason
        assert status == cli_error(capsys, ["vary", f"ckpt={files.bundle}", f"input={path}", "steps=2",
                                            f"out={tmp_path / 'cli'}"])
    ok = page.run("vary", *page_values(page, "vary", files.kick, n=2))
    assert ok[0].startswith("take #1: 2 vary result(s)")


def test_limits_and_option_checks_are_one_line(studio, files, tmp_path):
    big = tmp_path / "big.wav"
    sf.write(big, [0.1] * (600_000), 44100)  # 1.2 MB, over the 1 MB limit of this studio
    with pytest.raises(UsageError, match=r"MB is more than the studio's upload limit of 1 MB"):
        studio.run("vary", {"n": 1}, {"input": big})
    with pytest.raises(UsageError, match=r"the studio makes at most 8 items at once"):
        studio.run("vary", {"n": 9}, {"input": files.kick})
    with pytest.raises(UsageError, match=r"^strength must be a number from 0 to 1 \(0 = the input itself, 1 = a "
                                         r"new sample\), got strength=1.5$"):
        studio.run("vary", {"n": 1, "strength": 1.5}, {"input": files.kick})
    with pytest.raises(UsageError, match=r"^missing value: give input=\.\.\."):
        studio.run("vary", {"n": 1}, {"input": None})
    with pytest.raises(UsageError, match=r"^unknown option 'banana' for this model; it takes: "
                                         r"prompt=\"TEXT\", sample_rate"):
        studio.run("vary", {"n": 1, **FAST}, {"input": files.kick}, media_text="banana=1")
    assert studio.takes == {}
    assert not (studio.out / "takes").exists() or not any((studio.out / "takes").iterdir())


def test_file_options_are_read_as_the_command_line_reads_them():
    assert parse_media_options("output_rate=44100 midi=true max_seconds=1e12 output_bits=input media.x=null "
                               "y=[1,2] z='a,b'") == {"output_rate": 44100, "midi": True, "max_seconds": 1e12,
                                                      "output_bits": "input", "x": None, "y": [1, 2], "z": "a,b"}
    with pytest.raises(UsageError, match=r"^file option 'z=a,b' is a sweep of several values; the studio runs one at a "
                                         r"time \(quote a value that holds a comma: z='a,b'\)$"):
        parse_media_options("z=a,b")
    with pytest.raises(UsageError, match=r"^file option 'z=range\(3\)' is a sweep of several values; the studio runs "
                                         r"one at a time$"):
        parse_media_options("z=range(3)")
    with pytest.raises(UsageError, match=r"^cannot read file option 'rate': write key=value"):
        parse_media_options("rate")


def test_media_options_write_at_another_rate(studio, files):
    take = studio.run("vary", {"n": 1, **FAST}, {"input": files.kick}, media_text="output_rate=44100")
    assert sf.info(take.items[0][0]).samplerate == 44100


# --- keeping, history, model switching ---------------------------------------------------------


def test_keep_copies_a_take_and_its_recipe_into_a_named_folder_inside_out(studio, files):
    take = studio.run("vary", {"n": 2, **FAST}, {"input": files.kick})
    copied = studio.keep(take.number, 1, "../../my kit")
    folder = studio.out / "kept" / "_.._my kit"
    assert sorted(p.name for p in folder.iterdir()) == ["take001_recipe.yaml", "take001_variation_001.png",
                                                        "take001_variation_001.wav"]
    assert all(p.resolve().is_relative_to(studio.out.resolve()) for p in copied)
    with pytest.raises(UsageError, match="there is no take #5 item 1 to keep"):
        studio.keep(5, 0, "kit")
    with pytest.raises(UsageError, match="there is no take #1 item 3 to keep"):  # the page counts items from 1
        studio.keep(1, 2, "kit")


def test_page_handlers_show_players_use_as_input_keep_and_history(studio, files):
    page = Page(studio, [widgets_of(studio.shelf.model().modality), PLAIN])  # the model's own, then plain files
    result = page.run("vary", *page_values(page, "vary", files.kick, n=4))
    status, take_files, history_menu, take_number, history, *slots = result
    assert status.startswith("take #1: 4 vary result(s)") and take_number == 1 and history == [1]
    assert len(take_files) == 9 and take_files[-1].endswith("recipe.yaml")
    groups, players, pictures = slots[:8], slots[8:24], slots[24:]
    assert [g["visible"] for g in groups] == [True] * 4 + [False] * 4
    assert page.kinds == ["audio", "file"]
    audio_players = players[0::2]
    assert [p["visible"] for p in audio_players] == [True] * 4 + [False] * 4
    assert audio_players[2]["value"].endswith("variation_002.wav") and not any(p["visible"] for p in players[1::2])
    assert len(pictures) == 8 and pictures[0]["value"].endswith("variation_000.png")  # only audio declares a viewer
    used = page.use_as_input(1, 2)
    assert used[1]["value"].endswith("variation_002.wav") and used[0] == "take #1 item 3 is the input now"
    assert page.keep(1, 0, "pack").startswith("kept take #1 item 1 in ")
    again = page.run("vary", *page_values(page, "vary", used[1]["value"], n=1, seed=3)[:-1], history)
    assert again[4] == [1, 2] and again[2]["choices"][0].startswith("#2 vary")
    shown = page.show_take(studio.takes[1].label)
    assert shown[2] == 1 and [g["visible"] for g in shown[3:11]] == [True] * 4 + [False] * 4


def test_operation_fields_follow_the_commands_defaults(studio):
    page = Page(studio, [])
    help_line, *updates = page.operation_changed("convert")
    fields = dict(zip(FIELDS, updates))
    assert help_line.startswith("*convert*")
    assert fields["target"]["visible"] and fields["method"]["visible"] and not fields["start"]["visible"]
    assert fields["n"]["value"] == 4 and fields["strength"]["value"] == 0.6
    fields = dict(zip(FIELDS, page.operation_changed("vary")[1:]))
    assert fields["guidance"]["value"] == 2.0 and fields["label"]["value"] == "auto"
    second = page.operation_changed("interpolate")[-1]
    assert second["visible"] is True


def test_switching_models_needs_no_restart_and_a_bad_choice_keeps_the_old(studio, files, tmp_path):
    page = Page(studio, [])
    other = tiny_audio_bundle(tmp_path / "runs" / "train" / "other")
    assert str(other) in studio.shelf.choices() and "drums_starter" in studio.shelf.choices()
    result = page.switch_model(str(tmp_path / "runs" / "train" / "nope" / "model.safetensors"), "vary")
    assert result[0].startswith("diffusionkit studio: error: the studio loads only the models its picker lists")
    assert studio.shelf.current_choice == str(files.bundle)
    result = page.switch_model(str(other), "vary")
    assert result[0] == f"loaded {other}" and studio.shelf.model().path == other
    assert studio.run("vary", {"n": 1, **FAST}, {"input": files.kick}).model == str(other)


def test_the_picker_loads_no_file_it_does_not_list(studio, files, tmp_path):
    """A page's request named any path (an uploaded bundle, /etc/passwd, a folder) and the reply
    said whether it existed; now only the picker's own list is loaded, and uploads are not runs."""
    page = Page(studio, [])
    uploaded = tiny_audio_bundle(tmp_path / "runs" / "studio" / "s1" / ".gradio" / "abc")  # where uploads land
    assert str(uploaded) not in studio.shelf.choices()
    for choice in (str(uploaded), "/etc/passwd", "/root", "/no/such/model.safetensors", f"{files.bundle},{files.bundle}"):
        status = page.switch_model(choice, "vary")[0]
        assert status == ("diffusionkit studio: error: the studio loads only the models its picker lists (the bundles "
                          f"plugins ship, ckpt= given when it started, runs under '{tmp_path / 'runs'}'); restart it "
                          "with ckpt=<your model> to open another")
    assert studio.shelf.current_choice == str(files.bundle)


def test_a_run_pushed_off_the_recent_list_stays_loadable(studio, files, tmp_path, monkeypatch):
    """The page's list is made when it opens; newer runs that push a run off the recent list
    (12 entries) must not make the picker refuse what it shows."""
    import diffusionkit.apps.studio.shelf as shelf_module

    older = tiny_audio_bundle(tmp_path / "runs" / "train" / "older")
    assert str(older) in studio.shelf.choices()  # shown on the page
    monkeypatch.setattr(shelf_module, "recent_runs", lambda folder: [])  # newer runs pushed it off
    assert str(older) not in studio.shelf.choices()
    assert studio.switch(str(older)).path == older


def test_the_picker_and_the_run_button_share_one_queue(studio):
    page = Page(studio, []).build()
    ids = {block.name: block.concurrency_id for block in page.fns.values() if block.name in ("run", "switch_model")}
    assert ids == {"run": "model", "switch_model": "model"}


@pytest.mark.parametrize("field, value, where", [
    ("target", "${oc.env:HOME}", "target"), ("target", "${", "target"), ("prompt", "${ckpt}", "prompt"),
    ("media", "output_rate=${oc.env:HOME}", "output_rate"),
])
def test_page_text_is_taken_as_written(studio, files, field, value, where):
    """``${oc.env:HOME}`` typed on the page was resolved by the config, and the error line quoted
    the server's environment back; a lone ``${`` was an internal error over three lines."""
    settings = {"n": 1, "target": "snare", **FAST}
    media = value if field == "media" else ""
    if field != "media":
        settings[field] = value
    with pytest.raises(UsageError) as info:
        studio.run("convert", settings, {"input": files.kick}, media_text=media)
    assert str(info.value) == (f"{where}: the studio takes text as written and does not resolve '${{...}}'; "
                               f"remove '${{' from it ({value.partition('=')[2] if field == 'media' else value!r})")
    assert os.environ["HOME"] not in str(info.value) and studio.takes == {}


@pytest.mark.parametrize("operation", ["vary", "roundtrip"])
@pytest.mark.parametrize("name", ["${oc.env:HOME}.wav", "a${b.wav"])
def test_an_upload_named_with_an_interpolation_is_refused(studio, files, tmp_path, operation, name):
    named = tmp_path / name
    named.write_bytes(files.kick.read_bytes())
    with pytest.raises(UsageError) as info:
        studio.run(operation, {"n": 1, **FAST}, {"input": named})
    assert str(info.value) == ("input: the studio takes text as written and does not resolve '${...}'; remove '${' "
                               f"from its file name ('{named}')")
    assert studio.takes == {}


def test_a_failed_take_leaves_no_folder_that_blocks_the_next(studio, files):
    with pytest.raises(Exception, match="cannot"):
        studio.run("roundtrip", {}, {"input": files.corrupt})
    assert not (studio.out / "takes" / "001_roundtrip").exists()
    take = studio.run("roundtrip", {}, {"input": files.kick})
    assert take.number == 1 and take.folder.name == "001_roundtrip"


def test_roundtrip_applies_the_file_options_as_the_other_operations_do(studio, files):
    take = studio.run("roundtrip", {}, {"input": files.kick}, media_text="output_rate=48000")
    assert [sf.info(p).samplerate for p in take.items[0] if p.suffix == ".wav"] == [48000]
    with pytest.raises(UsageError, match=r"^unknown option 'bogus' for this model; it takes: sample_rate"):
        studio.run("roundtrip", {}, {"input": files.kick}, media_text="bogus=1")


def test_output_rate_input_follows_the_file_when_it_is_sent_again(studio, tmp_path):
    """The input cache skipped the read that tells the modality the file's rate and depth: the
    second take of the same 48 kHz 24-bit file came out at the model's rate, 16-bit."""
    source = drum_wav(tmp_path / "kick48.wav", rate=48000)
    sf.write(source, sf.read(source)[0], 48000, subtype="PCM_24")
    for _ in range(2):
        take = studio.run("vary", {"n": 1, **FAST}, {"input": source}, media_text="output_rate=input output_bits=input")
        info = sf.info(take.items[0][0])
        assert (info.samplerate, info.subtype) == (48000, "PCM_24")


def test_a_model_switch_waits_for_the_run_in_progress_and_the_take_names_its_model(studio, files, tmp_path):
    other = tiny_audio_bundle(tmp_path / "runs" / "train" / "other")
    started, switched, during = threading.Event(), [], []
    original = studio.cache.get

    def slow_get(key, compute):  # the run holds the studio while the switch is asked for
        started.set()
        time.sleep(0.5)
        during.append(studio.shelf.current_choice)  # still the run's model: the switch waits
        return original(key, compute)

    studio.cache.get = slow_get
    switch = threading.Thread(target=lambda: started.wait(30) and switched.append(
        (studio.switch(str(other)), len(studio.takes))))
    switch.start()
    take = studio.run("vary", {"n": 1, **FAST}, {"input": files.kick})
    switch.join(60)
    assert during and set(during) == {str(files.bundle)}
    assert switched[0][0].path == other and switched[0][1] == 1  # loaded once the take was recorded
    assert take.model == str(files.bundle)
    assert yaml.safe_load(take.recipe.read_text())["checkpoint"]["path"] == str(files.bundle.resolve())


def test_recent_runs_are_newest_first(tmp_path):
    old = tiny_audio_bundle(tmp_path / "train" / "a")
    new = tiny_audio_bundle(tmp_path / "train" / "b")
    os.utime(old, (1, 1))
    assert recent_runs(tmp_path) == [new, old]


# --- the command -------------------------------------------------------------------------------


def test_studio_options_are_checked_in_one_line(capsys, tmp_path):
    assert cli_error(capsys, ["studio", "port=abc"]) == (
        "diffusionkit studio: error: port must be a whole number from 0 to 65535 (a TCP port; 0 = any free one), "
        "got port=abc")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(UsageError, match="is not empty"):
        studio_folder(str(tmp_path / "used"))


def test_nothing_is_written_outside_the_output_folder(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRADIO_TEMP_DIR", "unset")
    out = studio_folder(str(tmp_path / "out"))
    keep_files_inside(out)
    assert Path(os.environ["GRADIO_TEMP_DIR"]) == (out / ".gradio").resolve()
    shelf = ModelShelf(tmp_path / "outputs", extra=[str(files.bundle)])
    shelf.select(str(files.bundle))
    studio = Studio(out, shelf)
    page = Page(studio, [])
    page.build()
    page.run("vary", *page_values(page, "vary", files.kick, n=2))
    page.keep(1, 0, "kit")
    page.run("convert", *page_values(page, "convert", files.corrupt))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "kept/kit/take001_recipe.yaml", "kept/kit/take001_variation_000.png", "kept/kit/take001_variation_000.wav",
        "takes/001_vary/recipe.yaml", "takes/001_vary/variation_000.png", "takes/001_vary/variation_000.wav",
        "takes/001_vary/variation_001.png", "takes/001_vary/variation_001.wav"]


def test_error_text_names_a_bug_as_one(caplog):
    assert error_text("vary", RuntimeError("boom")) == ("diffusionkit vary: internal error: RuntimeError: boom "
                                                        "(see the studio's console)")


def test_widgets_come_from_what_the_modality_declares():
    import gradio as gr

    from diffusionkit.apps.studio.widgets import input_widget, player_widget, split_files, viewer_widget
    from diffusionkit.media import FileWidgets, Widget
    from tests.toy_modality import ToyModality

    assert widgets_of(ToyModality(1, (8,))) is PLAIN  # declares none: plain file fields
    sheet = FileWidgets("sheet", upload=Widget("File", {"file_types": [".csv"]}), player=Widget("File", {"height": 50}),
                        playable=(".csv",), viewer=Widget("Markdown"), viewable=(".txt",))
    field, player = input_widget(sheet, "input", "input-sheet", True), player_widget(sheet, "1", "player-0-sheet")
    assert isinstance(field, gr.File) and field.file_types == [".csv"] and field.elem_id == "input-sheet"
    assert isinstance(player, gr.File) and player.height == 50 and not player.visible and not player.interactive
    assert isinstance(viewer_widget(sheet, "viewer-0-sheet"), gr.Markdown)
    files = [Path("a.png"), Path("a.txt"), Path("a.csv"), Path("b.txt")]
    assert split_files(sheet, files) == (Path("a.csv"), Path("a.txt"))
    assert split_files(PLAIN, files) == (Path("a.png"), None)  # plays nothing: the first file; no viewer
    with pytest.raises(UsageError, match=r"file_widgets 'bad' name 'Banjo', which is no Gradio component"):
        input_widget(FileWidgets("bad", Widget("Banjo"), Widget("File")), "input", "input-bad", True)
