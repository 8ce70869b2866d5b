"""Atomic writes: a failed write leaves the old file and no temporary behind."""
import pytest

from keras_gen.errors import KerasGenError
from keras_gen.files import atomic_path, ensure_writable_dir


def test_success_replaces_the_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with atomic_path(target, suffix=".txt") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.txt.tmp-")
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer crashed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_folders_are_renamed_whole(tmp_path):
    with atomic_path(tmp_path / "1") as tmp:
        tmp.mkdir()
        (tmp / "saved_model.pb").write_text("x")
    assert (tmp_path / "1" / "saved_model.pb").read_text() == "x"


def test_an_output_folder_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(KerasGenError, match="cannot create output folder"):
        ensure_writable_dir(tmp_path / "file" / "sub")
