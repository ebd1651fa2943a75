"""The contract's file checks that plugins share: odd paths are refused by stat alone, in one line."""

import os

import pytest

from diffusionkit.modality import MediaError, check_file, file_problem, limit_error


def test_a_regular_file_with_content_passes(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"x")
    assert file_problem(path) is None
    assert check_file(str(path), "thing") == path


def _directory(path):
    path.mkdir()
    return path


def _empty(path):
    path.write_bytes(b"")
    return path


def _dangling(path):
    path.symlink_to(path.parent / "gone")
    return path


@pytest.mark.parametrize(("make", "problem"), [
    (lambda p: p, "no such file"),
    (_directory, "it is a directory"),
    (_empty, "the file is empty (0 bytes)"),
    (_dangling, "no such file"),
    (lambda p: f"{p}\0x", "not a valid file path"),
], ids=["missing", "directory", "empty", "dangling-symlink", "nul-byte"])
def test_odd_paths_are_named(tmp_path, make, problem):
    path = make(tmp_path / "in.png")
    assert file_problem(path) == problem
    with pytest.raises(MediaError) as info:
        check_file(path, "image")
    assert str(info.value) == f"cannot read image '{path}': {problem}"


def test_a_named_pipe_is_refused_without_blocking(named_pipe):
    path = named_pipe("pipe.wav")
    assert file_problem(path) == "it is a named pipe (FIFO), not a regular file; copy its data into a regular file"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused():
    assert file_problem("/dev/zero").startswith("it is a character device, not a regular file")


def test_limit_error_names_the_limit_and_how_to_raise_it():
    err = limit_error("x.gif", "video", "it lasts 13104 s, longer than allowed", "max_seconds", 600, "seconds")
    assert str(err) == ("cannot read video 'x.gif': it lasts 13104 s, longer than allowed (limit: max_seconds=600); "
                        "if the file is right, raise the limit (modality.max_seconds=<seconds> for train, "
                        "max_seconds=<seconds> for other commands)")
