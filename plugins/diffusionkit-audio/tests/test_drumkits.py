"""data=drumkits: kit formats, the keyword table, splits by kit, preprocessing and its report."""

from __future__ import annotations

import io
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusionkit_audio.audio_io import loudness_dbfs
from diffusionkit_audio.drum_names import KeywordTable, name_words
from diffusionkit_audio.drumkits import find_kits, parse_drumkit_xml
from diffusionkit_audio.drumkits_dataset import DrumKitsDataset
from diffusionkit_audio.modality import AudioModality
from diffusionkit_audio.oneshots import OneShotOptions, clipped_fraction, prepare_oneshot
from tiny_kits import hit, write, write_drumkit_xml, write_tiny_kits

from diffusionkit.commands import run_command
from diffusionkit.modality import MediaError

RATE, NUM_SAMPLES = 16000, 16128
CLASSES = ["kick", "snare", "clap", "closed_hat", "open_hat", "rim"]


@pytest.fixture(scope="module")
def modality() -> AudioModality:
    return AudioModality()


@pytest.fixture(scope="module")
def kits(tmp_path_factory) -> Path:
    return write_tiny_kits(tmp_path_factory.mktemp("drumkits"))


def dataset(modality, root, **options) -> DrumKitsDataset:
    options = {"split": "all", "classes": CLASSES, "cache": False, **options}
    return DrumKitsDataset(modality, root=root, **options)


@pytest.fixture(scope="module")
def everything(modality, kits) -> DrumKitsDataset:
    return dataset(modality, kits)


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize(("name", "expected"), [
    ("Kick", "kick"), ("BassDrum", "kick"), ("c3 - bass drum 1", "kick"), ('Kick (Tama Superstar 22")', "kick"),
    ("Snare Jazz", "snare"), ("Snare Rimshot", "snare"), ("Pearl Snare Rimshot", "snare"), ("Snare1", "snare"),
    ("Stick", "rim"), ("Pearl Side Stick", "rim"), ("Rim Click (Pearl Maple 14x3.5)", "rim"),
    ("Hand Clap", "clap"), ("Clap Hard", "clap"),
    ("Hi Hat Closed", "closed_hat"), ("Closed HH 2", "closed_hat"), ("f#3 - hi-hat closed", "closed_hat"),
    ("VariBreaks Hat 1 Cl", "closed_hat"), ("Hat Op Dirty", "open_hat"), ("Hi Hat Opened", "open_hat"),
    ("Hi-Hat Semiopen (Paiste 14\")", "open_hat"), ("Side OHH", "open_hat"), ("Pedal HH", "pedal_hat"),
    ("Hat 1 Pd", "pedal_hat"), ("Hat Ring 1", "hat"), ("Floor Tom", "tom"), ("tomhi2", "tom"),
    ("Crash/Ride (Paiste 18\")", "crash"), ("Crash/Ride Bell", "ride"), ("Ride Bell", "ride"), ("ride-cup", "ride"),
    ("Zildjian Splash", "crash"), ("Cowbell", "cowbell"), ("Tambourine Pedal", "percussion"),
    ("Djembe1 Bass", "percussion"), ("Snare Roll", "roll"), ("Zap 1", "fx"),
    ("redo super opaco", None), ("Drum 1", None), ("17", None), ("", None),
])
def test_keyword_table_maps_real_instrument_names(name, expected):
    assert KeywordTable().classify(name) == expected


def test_user_keywords_win_over_the_table_and_may_add_classes():
    table = KeywordTable({"ride": ["paiste bell"], "zap": "laser", "kick": ["drum"]})
    assert table.classify("Paiste Bell") == "ride"
    assert table.classify("Laser Gun") == "zap" and "zap" in table.classes
    assert table.classify("Drum 1") == "kick"
    assert KeywordTable().classify("Paiste Bell") == "percussion"


def test_name_words_split_camel_case_digits_and_compounds():
    assert name_words("WaterglassHi") == ("waterglass", "hi")
    assert name_words("crash16inch") == ("crash", "16", "inch")
    assert name_words("HiHat Semiopen") == ("hi", "hat", "semi", "open")


# ---------------------------------------------------------------------------- kit formats


def test_every_kit_format_is_read_with_kit_and_instrument_names(kits, tmp_path):
    found = {kit.name: kit for kit in find_kits(kits, tmp_path)}
    assert {name: kit.form for name, kit in found.items()} == {
        "Archived": "archive", "NewKit": "hydrogen", "OldKit": "hydrogen", "PlainKit": "folder"}
    assert found["NewKit"].title == "New Kit 1.0"
    instruments = {kit: sorted({s.instrument for s in k.samples}) for kit, k in found.items()}
    assert instruments["Archived"] == ["BassDrum", "Hand Clap"]
    assert instruments["PlainKit"] == ["Kicks", "Side Stick", "Snares"]
    assert instruments["OldKit"] == ["Kick", "Open HH", "Snare"]
    assert len(found["NewKit"].samples) == 8
    assert all(s.path.is_file() and s.source.startswith(f"{s.kit}/") for k in found.values() for s in k.samples)


@pytest.mark.parametrize("style", ["new", "layer", "old"])
def test_drumkit_xml_layouts_give_the_same_instruments(tmp_path, style):
    write_drumkit_xml(tmp_path, "K", {"Kick": ["a.wav", "b.wav"], "Snare": ["c.flac"], "Empty": []}, style)
    title, instruments = parse_drumkit_xml(tmp_path / "drumkit.xml")
    assert title == "K"
    assert instruments == [("Kick", ["a.wav", "b.wav"]), ("Snare", ["c.flac"]), ("Empty", [])]


def test_one_kit_alone_is_a_root(modality, kits):
    only = dataset(modality, kits / "OldKit", classes=["kick", "snare", "open_hat"])
    assert set(only.kits) == {"OldKit"} and len(only) == 3
    plain = dataset(modality, kits / "PlainKit", classes=["kick", "snare", "rim"])
    assert sorted(plain.kits) == ["PlainKit"] * 4


def test_a_class_named_twice_is_one_line(modality, kits):
    with pytest.raises(ValueError) as err:
        dataset(modality, kits, classes=["kick", "snare", "kick"])
    assert str(err.value) == ("drumkits: classes name 'kick' more than once; each class is one label, so list it once "
                              "in data.dataset.classes")


def test_a_list_of_roots_reads_the_kits_of_each_and_holds_out_by_kit(modality, kits, tmp_path):
    extra = tmp_path / "more"  # a user's folder of plain kits beside the package's kits
    write(extra / "MyKit" / "kick" / "k.wav", hit("kick", 7))
    write(extra / "MyKit" / "snare" / "s.wav", hit("snare", 7))
    options = {"classes": ["kick", "snare"], "test_kits": ["OldKit"]}
    both = dataset(modality, [kits, extra], split="train", **options)
    assert set(both.kits) == {"NewKit", "PlainKit", "Archived", "MyKit"}
    assert sorted(both.files) == sorted(dataset(modality, kits, split="train", **options).files + [
        "MyKit/kick/k.wav", "MyKit/snare/s.wav"])
    assert set(dataset(modality, [kits, extra], split="test", **options).kits) == {"OldKit"}


def test_roots_that_share_a_kit_name_or_an_empty_list_are_one_line(modality, kits, tmp_path):
    write(tmp_path / "copy" / "NewKit" / "kick" / "k.wav", hit("kick", 8))
    with pytest.raises(MediaError, match=r"^drum kits: '.*' and '.*copy' both hold a kit named 'NewKit'; rename one"):
        dataset(modality, [kits, tmp_path / "copy"])
    with pytest.raises(ValueError, match=r"^drumkits: data.dataset.root is an empty list"):
        dataset(modality, [])
    with pytest.raises(ValueError, match=r"^drumkits: data.dataset.root is not set"):
        dataset(modality, None)
    with pytest.raises(MediaError, match=r"^drum kits '.*absent' not found"):
        dataset(modality, [kits, tmp_path / "absent"])


def test_files_outside_a_kit_folder_are_missing_not_read(tmp_path):
    write(tmp_path / "outside.wav", hit("kick", 0))
    write_drumkit_xml(tmp_path / "kit", "K", {"Kick": ["../outside.wav", "absent.wav"]})
    kit = find_kits(tmp_path / "kit", tmp_path / "scratch")[0]
    assert kit.samples == [] and kit.missing == ["kit/../outside.wav", "kit/absent.wav"]


# ---------------------------------------------------------------------------- archives


def _archive(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


@pytest.mark.parametrize(("members", "links", "reason"), [
    ({"Kit/drumkit.xml": b"<drumkit_info/>", "../evil.wav": b"x"}, None, "member '../evil.wav' points outside"),
    ({"/etc/evil.wav": b"x"}, None, "member '/etc/evil.wav' has an absolute path"),
    ({"Kit/drumkit.xml": b"<drumkit_info/>"}, {"Kit/a.wav": "/etc/passwd"}, "member 'Kit/a.wav' is a link"),
])
def test_unsafe_archive_is_refused_in_one_line_and_nothing_is_written(tmp_path, members, links, reason):
    archive = _archive(tmp_path / "Bad.h2drumkit", members, links)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(MediaError) as caught:
        find_kits(archive, scratch)
    message = str(caught.value)
    assert "\n" not in message and reason in message and "refused" in message and "Bad.h2drumkit" in message
    assert not (tmp_path / "evil.wav").exists() and not any(p.is_file() for p in scratch.rglob("*"))


def test_a_file_that_is_not_an_archive_or_a_kit_is_one_line(tmp_path):
    bad = tmp_path / "Bad.h2drumkit"
    bad.write_bytes(b"not a tar file at all")
    with pytest.raises(MediaError, match=r"^cannot read drum kit archive .*not a readable tar archive"):
        find_kits(bad, tmp_path)
    with pytest.raises(MediaError, match=r"^drum kits '.*kick.wav' is a file, not a kit"):
        find_kits(write(tmp_path / "kick.wav", hit("kick", 0)), tmp_path)
    with pytest.raises(MediaError, match=r"^drum kits '.*empty': no kit found"):
        (tmp_path / "empty").mkdir()
        find_kits(tmp_path / "empty", tmp_path)


# ---------------------------------------------------------------------------- the dataset


def test_classes_counts_and_kit_names(everything):
    assert everything.classes == CLASSES
    counts = {name: c["kept"] for name, c in everything.summary()["per_class"].items()}
    # kicks: NewKit 2 (a silent and a copy dropped), OldKit 1, Archived 1, PlainKit 2
    assert counts == {"kick": 6, "snare": 3, "clap": 1, "closed_hat": 1, "open_hat": 1, "rim": 1}
    assert len(everything) == 13 == len(everything.kits) == len(everything.files) == len(everything.sources)
    assert set(everything.kits) == {"NewKit", "OldKit", "Archived", "PlainKit"}
    index = everything.files.index("Archived/clap.wav")
    assert everything.instruments[index] == "Hand Clap" and everything[index]["label"] == CLASSES.index("clap")
    item = everything[0]
    assert item["x"].shape == (1, 64, 64) and item["x"].dtype == torch.float32 and isinstance(item["label"], int)
    assert everything.waves.shape == (13, NUM_SAMPLES)


def test_unmapped_instruments_and_other_classes_are_reported_by_name(everything):
    assert everything.summary()["unmapped"] == ["NewKit: Mystery Thing"]
    report = everything.report()
    assert "NewKit: 'Mystery Thing'" in report
    assert "not kept (classes not in data.dataset.classes): cowbell 1" in report
    assert all(everything.files[i] not in ("NewKit/thing.wav", "NewKit/bell.wav") for i in range(len(everything)))


def test_preprocessing_drops_a_silent_and_a_duplicate_sample_and_says_so(everything):
    kick = everything.summary()["per_class"]["kick"]
    assert (kick["samples"], kick["kept"], kick["silent"], kick["duplicate"]) == (8, 6, 1, 1)
    report = everything.report()
    header = next(line for line in report.splitlines() if line.startswith("class"))
    kick_row = next(line for line in report.splitlines() if line.startswith("kick "))
    assert header.split() == ["class", "samples", "kept", "silent", "duplicate"]
    assert kick_row.split() == ["kick", "8", "6", "1", "1"]
    assert "silent     kick        NewKit/kick_silent.wav ('Kick (Tama Superstar 22\")'): cannot read audio" in report
    assert "NewKit/kick_copy.wav ('Kick (Tama Superstar 22\")'): copy of NewKit/kick_soft.wav" in report


def test_clips_start_at_the_onset_and_are_loudness_normalised(everything):
    late = everything.waves[everything.files.index("OldKit/bd.wav")]
    assert np.abs(late[: int(0.01 * RATE)]).max() > 0.05  # 0.2 s of leading silence removed
    levels = [loudness_dbfs(w) for w in everything.waves]
    assert all(abs(level + 20.0) < 0.5 or np.abs(w).max() > 0.98 for level, w in zip(levels, everything.waves))


def test_splits_are_by_kit_and_disjoint(modality, kits):
    options = {"test_kits": ["OldKit", "Archived Kit"], "classes": ["kick", "snare"]}
    train = dataset(modality, kits, split="train", **options)
    test = dataset(modality, kits, split="test", **options)
    full = dataset(modality, kits, split="all", **options)
    assert set(train.kits) == {"NewKit", "PlainKit"} and set(test.kits) == {"OldKit", "Archived"}
    assert sorted(train.files + test.files) == sorted(full.files)
    assert train.summary()["held_out"] == ["Archived", "OldKit"]


def test_all_is_train_and_test_together_when_kits_share_a_recording(modality, tmp_path):
    root = tmp_path / "kits"
    for kit in ("A", "B"):  # A's kick is a copy of B's: split=all drops A's, as split=train does
        write(root / kit / "Kick" / "k.wav", hit("kick", 1))
        write(root / kit / "Snare" / "s.wav", hit("snare", ord(kit)))
    write(root / "A" / "Kick" / "k2.wav", hit("kick", 2))
    options = {"test_kits": ["B"], "classes": ["kick", "snare"]}
    parts = [dataset(modality, root, split=split, **options).files for split in ("train", "test")]
    assert sorted(parts[0] + parts[1]) == sorted(dataset(modality, root, split="all", **options).files)
    assert parts[0] == ["A/Kick/k2.wav", "A/Snare/s.wav"]
    assert dataset(modality, root, split="all", test_kits=["gone"], classes=["kick", "snare"]).held_out == set()


def test_a_training_copy_of_a_held_out_sample_is_dropped(modality, tmp_path):
    root = tmp_path / "kits"
    for kit, seeds in (("A", (1, 2)), ("B", (1, 3))):  # B's first kick is A's first
        for seed in seeds:
            write(root / kit / "Kick" / f"k{seed}.wav", hit("kick", seed))
        write(root / kit / "Snare" / "s.wav", hit("snare", seeds[1]))
    train = dataset(modality, root, split="train", test_kits=["A"], classes=["kick", "snare"])
    assert train.files == ["B/Kick/k3.wav", "B/Snare/s.wav"] and train.sources == ["B", "B"]
    assert "B/Kick/k1.wav ('Kick'): copy of A/Kick/k1.wav ('Kick') (held out)" in train.report()


def test_unknown_test_kit_and_missing_root_are_one_line(modality, kits, tmp_path):
    with pytest.raises(ValueError, match=r"^drumkits: test_kits \['Nope'\] are not kits under .*NewKit"):
        dataset(modality, kits, split="train", test_kits=["Nope"])
    with pytest.raises(MediaError, match=r"^drum kits '.*absent' not found: .*apt-get install hydrogen-drumkits"):
        dataset(modality, tmp_path / "absent")
    with pytest.raises(ValueError, match=r"^drumkits: classes \['kik'\] are not classes"):
        dataset(modality, kits, classes=["kick", "kik"])


def test_a_class_without_samples_in_the_training_kits_is_refused(modality, kits):
    with pytest.raises(MediaError, match=r"split=train\): no usable sample of class clap in kits NewKit, PlainKit"):
        dataset(modality, kits, split="train", test_kits=["OldKit", "Archived"], classes=["kick", "clap"])


def test_split_all_keeps_the_classes_the_kits_hold_and_names_the_others(modality, kits, caplog):
    """Nothing is held out against a class no kit holds, so ``split=all`` (a user's own kit for
    ``finetune``) leaves it out, with a warning, where ``split=train`` refuses it (above)."""
    every = dataset(modality, kits, split="all", classes=["kick", "snare"])
    with caplog.at_level("WARNING"):
        some = dataset(modality, kits, split="all", classes=["kick", "tom", "snare"])
    assert some.classes == ["kick", "snare"] and some.labels == every.labels and some.files == every.files
    assert "hold no usable sample of class tom: left out (split=all keeps the classes the kits hold)" in caplog.text
    with pytest.raises(MediaError, match=r"split=all\): no usable sample of class tom, crash in kits"):
        dataset(modality, kits, split="all", classes=["tom", "crash"])


def test_the_cache_gives_the_same_items_without_decoding(modality, kits, tmp_path, monkeypatch):
    first = dataset(modality, kits, cache=True, cache_dir=tmp_path / "cache")
    monkeypatch.setattr("diffusionkit_audio.drumkits_dataset.prepare_oneshot",
                        lambda *a, **k: pytest.fail("decoded again"))
    second = dataset(modality, kits, cache=True, cache_dir=tmp_path / "cache")
    assert second._cache.hits == 4 and second.files == first.files
    assert torch.equal(first.x, second.x) and second.report().count("\n") == first.report().count("\n")


# ---------------------------------------------------------------------------- filters on their own


def _prepared(tmp_path: Path, wave: np.ndarray, rate: int = 44100, **options):
    path = write(tmp_path / "x.wav", wave, rate)
    return prepare_oneshot(path, RATE, NUM_SAMPLES, 1, OneShotOptions(**options))


def test_filters_name_what_is_wrong(tmp_path):
    kick = hit("kick", 0)
    flat = np.clip(kick * 4, -0.9, 0.9)
    assert clipped_fraction(flat[None], 4) > 0.1
    assert _prepared(tmp_path, flat).reason == "clipped"
    cut = kick[: int(0.05 * 44100)]
    assert _prepared(tmp_path, cut).reason == "cut_off"
    assert _prepared(tmp_path, 1e-4 * kick).reason == "silent"
    assert _prepared(tmp_path, np.tile(kick, 40)).reason == "too_long"
    late = np.concatenate([np.zeros(44100, np.float32), kick])
    assert _prepared(tmp_path, late).reason == "late_onset"
    click = np.zeros(4410, np.float32)
    click[10:100] = np.hanning(90)
    assert _prepared(tmp_path, click).reason == "too_short"
    good = _prepared(tmp_path, kick)
    assert good.reason is None and good.wave.shape == (1, NUM_SAMPLES)
    assert math.isclose(loudness_dbfs(good.wave), -20.0, abs_tol=0.5)


# ---------------------------------------------------------------------------- the train hook


@pytest.mark.slow
def test_train_prints_and_writes_the_data_report(kits, tmp_path, capsys):
    run = tmp_path / "run"
    run_command("train", ["modality=audio", "data=drumkits", f"data.dataset.root={kits}", "data.dataset.split=all",
                          f"data.dataset.classes=[{','.join(CLASSES)}]", "data.dataset.cache=false",
                          "net=unet_small", "net.model_channels=16", "net.attention_levels=[]",
                          "net.channel_mult=[1,2]", "data.batch_size=4", "trainer.max_steps=2",
                          "trainer.val_check_interval=2", "trainer.limit_val_batches=1", "samples.every_n_steps=100",
                          "checkpoint.every_n_train_steps=2", f"out={run}"])
    written = (run / "data_report.txt").read_text()
    assert any(line.split()[:3] == ["kick", "8", "6"] for line in written.splitlines())
    assert "duplicate  kick        NewKit/kick_copy.wav" in written
    assert written.splitlines()[0] in capsys.readouterr().out


def test_stereo_modality_keeps_both_channels(kits):
    stereo = dataset(AudioModality(audio_channels=2), kits)
    assert stereo.waves.shape == (13, 2, NUM_SAMPLES) and stereo[0]["x"].shape == (2, 64, 64)


def test_the_config_takes_keywords_classes_and_preprocess_from_the_command_line(kits):
    from hydra.utils import instantiate

    from diffusionkit.config import compose_config

    cfg = compose_config("train", ["modality=audio", "data=drumkits", f"data.dataset.root={kits}",
                                   "data.dataset.split=all", "data.dataset.cache=false",
                                   f"data.dataset.classes=[{','.join(CLASSES)}]",
                                   "data.dataset.keywords={kick: [thing], percussion: bell}",
                                   "data.dataset.preprocess.duplicate_correlation=1.1"])
    built = instantiate(cfg.data.dataset)
    kick = built.summary()["per_class"]["kick"]
    assert built.summary()["unmapped"] == [] and (kick["samples"], kick["kept"], kick["duplicate"]) == (9, 8, 0)


def test_the_command_line_takes_a_list_of_roots_with_a_held_out_kit_in_the_second(kits, tmp_path):
    from hydra.utils import instantiate

    from diffusionkit.config import compose_config

    write(tmp_path / "more" / "MyKit" / "kick" / "k.wav", hit("kick", 9))
    write(tmp_path / "more" / "MyKit" / "snare" / "s.wav", hit("snare", 9))
    more = tmp_path / "more"
    cfg = compose_config("train", ["modality=audio", "data=drumkits", f'data.dataset.root=[{kits},"{more}"]',
                                   "data.dataset.split=test", "data.dataset.test_kits=[MyKit]", "data.dataset.cache=false",
                                   "data.dataset.classes=[kick,snare]"])
    built = instantiate(cfg.data.dataset)
    assert built.kits == ["MyKit", "MyKit"] and built.summary()["held_out"] == ["MyKit"]


def test_items_are_held_out_by_kit(modality, kits):
    """``sources`` (what ``evaluate`` folds and holds out) is each item's kit, not its file."""
    data = dataset(modality, kits, split="all")
    assert data.sources == data.kits and len(set(data.sources)) < len(set(data.files))


def test_an_archive_with_a_giant_long_name_header_is_refused_unread(modality, tmp_path):
    """A 10 MB GNU long name (a few KB compressed) is refused from its declared size, before
    tarfile reads it; the message stays short."""
    import gzip

    name = b"././@LongLink"
    size = 10_000_000
    header = bytearray(512)
    header[:len(name)] = name
    header[100:108] = b"0000644\x00"
    header[124:136] = f"{size:011o}\x00".encode()
    header[156:157] = b"L"
    header[257:263] = b"ustar "
    header[148:156] = b" " * 8
    header[148:155] = f"{sum(header):06o}\x00".encode()
    archive = tmp_path / "Evil.h2drumkit"
    with gzip.open(archive, "wb") as f:
        f.write(bytes(header) + b"a" * size + b"\x00" * 1024)
    assert archive.stat().st_size < 100_000
    with pytest.raises(MediaError) as refused:
        dataset(modality, archive, split="all")
    message = str(refused.value)
    assert "a header of 10,000,000 bytes (limit 65,536)" in message and len(message) < 600
