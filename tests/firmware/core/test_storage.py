"""The storage interface: MemoryStorage's power-cut model, FileStorage on a real directory.

Portable: also runs under MicroPython (FileStorage uses a directory in /tmp,
which the MicroPython Unix port has too).
"""

import os

from firmware.core.storage import FileStorage, MemoryStorage, PowerCut
from tests.protocol.portable import raises

MICROPYTHON = True


def test_a_missing_file_reads_as_none():
    assert MemoryStorage().read("nothing") is None


def test_append_and_replace_are_read_back():
    storage = MemoryStorage()
    storage.append("log", b"ab", False)
    storage.append("log", b"cd", True)
    assert storage.read("log") == b"abcd"
    storage.replace("log", b"new")
    assert storage.read("log") == b"new"
    storage.remove("log")
    assert storage.read("log") is None
    storage.remove("log")  # removing a missing file is fine


def test_a_power_cut_loses_only_what_was_not_synced():
    storage = MemoryStorage()
    storage.append("log", b"synced", True)
    storage.append("log", b"-lost", False)
    storage.replace("state", b"kept")
    storage.cut_power()
    assert storage.read("log") == b"synced"
    assert storage.read("state") == b"kept"


def test_a_sync_makes_earlier_unsynced_bytes_durable_too():
    storage = MemoryStorage()
    storage.append("log", b"one-", False)
    storage.append("log", b"two", True)
    storage.cut_power()
    assert storage.read("log") == b"one-two"


def test_a_power_cut_can_leave_a_torn_tail():
    storage = MemoryStorage()
    storage.append("log", b"synced", True)
    storage.append("log", b"0123456789", False)
    storage.cut_power(keep_unsynced_bytes=3)
    assert storage.read("log") == b"synced012"


def test_a_power_cut_during_an_append_writes_half_and_raises():
    storage = MemoryStorage()
    storage.append("log", b"first", True)
    storage.cut_power_during(2)
    storage.append("log", b"second", True)
    raises(PowerCut, storage.append, "log", b"0123456789", True)
    assert storage.read("log") == b"firstsecond01234"
    storage.cut_power()
    assert storage.read("log") == b"firstsecond"  # the half-written bytes were never synced


def test_a_power_cut_during_a_replace_keeps_the_old_content():
    storage = MemoryStorage()
    storage.replace("state", b"old")
    storage.cut_power_during(1)
    raises(PowerCut, storage.replace, "state", b"new")
    storage.cut_power()
    assert storage.read("state") == b"old"


def test_a_failing_card_raises_oserror_and_changes_nothing():
    storage = MemoryStorage()
    storage.append("log", b"kept", True)
    storage.failing = True
    raises(OSError, storage.append, "log", b"more", True)
    raises(OSError, storage.replace, "log", b"new")
    storage.failing = False
    assert storage.read("log") == b"kept"


def test_writes_are_logged():
    storage = MemoryStorage()
    storage.append("log", b"abc", False)
    storage.replace("state", b"12")
    assert storage.writes == [("append", "log", 3, False), ("replace", "state", 2, True)]
    assert storage.written("log") == [("append", "log", 3, False)]
    assert storage.written("state", "append") == []


# -- FileStorage ------------------------------------------------------------------


def _scratch_directory():
    name = "/tmp/balise-storage-test-" + "".join(["%02x" % b for b in os.urandom(6)])
    return name


def _clean(directory):
    for name in os.listdir(directory):
        os.remove(directory + "/" + name)
    os.rmdir(directory)


def test_file_storage_reads_writes_and_replaces():
    directory = _scratch_directory()
    storage = FileStorage(directory)
    try:
        assert storage.read("journal") is None
        storage.append("journal", b"ab", False)
        storage.append("journal", b"cd", True)
        assert storage.read("journal") == b"abcd"
        storage.replace("journal", b"xyz")
        storage.replace("journal", b"0123")
        assert storage.read("journal") == b"0123"
        assert sorted(os.listdir(directory)) == ["journal"]  # no temporary file left
        storage.remove("journal")
        storage.remove("journal")
        assert storage.read("journal") is None
        assert FileStorage(directory + "/").directory == directory  # an existing directory
    finally:
        _clean(directory)


def test_file_storage_finishes_a_replace_cut_between_remove_and_rename():
    directory = _scratch_directory()
    storage = FileStorage(directory)
    try:
        # What the FAT fallback leaves if the power goes after its remove().
        with open(directory + "/state.tmp", "wb") as file:
            file.write(b"complete")
        assert storage.read("state") == b"complete"
        assert os.listdir(directory) == ["state"]
        storage.append("state", b"+more", True)
        assert storage.read("state") == b"complete+more"
    finally:
        _clean(directory)
