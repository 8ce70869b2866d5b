"""Atomic writes: a failed write leaves the old file and no temporary behind."""
import pytest

from keras_gen.errors import KerasGenError
from keras_gen.files import atomic_path, ensure_writable_dir, made_dirs


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


def test_made_dirs_removes_only_the_folders_it_made_when_the_block_fails(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(KerasGenError):
        with made_dirs(tmp_path / "kept" / "new" / "deeper") as folder:
            assert folder.is_dir()
            raise KerasGenError("the command failed")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"] and not any((tmp_path / "kept").iterdir())
    with made_dirs(tmp_path / "made") as folder:
        (folder / "result").write_text("x")
    assert (tmp_path / "made" / "result").is_file()
    with pytest.raises(KerasGenError, match="NUL"):
        ensure_writable_dir(tmp_path / "a\0b")


def test_writes_are_synced_and_stale_temporaries_can_be_removed(tmp_path, monkeypatch):
    import os

    from keras_gen import files

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    with atomic_path(tmp_path / "a.txt", suffix=".txt") as tmp:
        tmp.write_text("new")
    # The temporary before the rename, then the folder after it.
    assert len(synced) == 2 and ".a.txt.tmp-" in synced[0] and synced[1] == str(tmp_path)
    monkeypatch.undo()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".epoch_002.keras.tmp-abc.keras").write_text("half")
    (tmp_path / ".1.tmp-xyz").mkdir()
    (tmp_path / ".1.tmp-xyz" / "saved_model.pb").write_text("x")
    (tmp_path / "sub" / "keep.tmp-not-ours").write_text("a user's file")
    removed = files.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".1.tmp-xyz", ".epoch_002.keras.tmp-abc.keras"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "keep.tmp-not-ours", "sub"]
