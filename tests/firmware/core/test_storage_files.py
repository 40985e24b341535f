"""FileStorage details that need CPython: fsync calls, a FAT-like rename, errors.

CPython only (tmp_path, monkeypatch); the portable cases are in test_storage.py.
"""

import os
from pathlib import Path

import pytest

from firmware.core import storage as storage_module
from firmware.core.storage import FileStorage


def test_replace_and_synced_appends_reach_fsync(tmp_path: Path, monkeypatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(descriptor: int) -> None:
        synced.append(descriptor)
        real_fsync(descriptor)

    monkeypatch.setattr(storage_module.os, "fsync", counting_fsync)
    files = FileStorage(str(tmp_path))
    files.append("journal", b"lazy", False)
    assert synced == []
    files.append("journal", b"now", True)
    assert len(synced) == 1
    files.replace("state", b"new")
    assert len(synced) == 3  # the temporary file, then the directory (the rename)
    assert (tmp_path / "journal").read_bytes() == b"lazynow"


def test_replace_works_where_rename_cannot_overwrite(tmp_path: Path, monkeypatch) -> None:
    real_rename = os.rename

    def fat_rename(source: str, target: str) -> None:
        if os.path.exists(target):
            raise OSError(17, "File exists")
        real_rename(source, target)

    monkeypatch.setattr(storage_module.os, "rename", fat_rename)
    files = FileStorage(str(tmp_path))
    files.replace("state", b"one")
    files.replace("state", b"two")
    assert files.read("state") == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_an_old_temporary_file_does_not_shadow_the_real_one(tmp_path: Path) -> None:
    # A replace cut while writing its temporary file: the old content stands.
    (tmp_path / "state").write_bytes(b"old")
    (tmp_path / "state.tmp").write_bytes(b"half-wri")
    files = FileStorage(str(tmp_path))
    assert files.read("state") == b"old"
    files.replace("state", b"new")
    assert files.read("state") == b"new"


def test_errors_other_than_a_missing_file_are_raised(tmp_path: Path) -> None:
    (tmp_path / "journal").mkdir()  # a directory where a file should be
    files = FileStorage(str(tmp_path))
    with pytest.raises(OSError):
        files.read("journal")
    with pytest.raises(OSError):
        files.remove("journal")
    with pytest.raises(OSError):
        FileStorage(str(tmp_path / "journal" / "deeper" / "still"))


def test_the_directory_is_created_once(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    FileStorage(str(directory)).append("a", b"x", True)
    FileStorage(str(directory))
    assert (directory / "a").read_bytes() == b"x"
