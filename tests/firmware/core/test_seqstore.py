"""Sequence numbers: increasing, never reused across restarts, power cuts and damage.

Portable: also runs under MicroPython.
"""

from firmware.core.seqstore import (
    MAX_SEQ,
    SEQ_FILES,
    SequenceStore,
    decode_ceiling,
    encode_ceiling,
)
from firmware.core.storage import MemoryStorage, PowerCut
from firmware.errors import FirmwareError, StateError
from tests.protocol.portable import raises

MICROPYTHON = True


def numbers(store, count):
    return [store.next() for _ in range(count)]


def test_a_fresh_unit_counts_from_zero():
    store = SequenceStore(MemoryStorage(), block=10)
    assert store.state == "fresh"
    assert numbers(store, 25) == list(range(25))


def test_the_block_is_on_disk_before_its_first_number_is_handed_out():
    storage = MemoryStorage()
    store = SequenceStore(storage, block=10)
    assert storage.writes == []  # nothing reserved until a number is asked for
    assert store.next() == 0
    for name in SEQ_FILES:
        assert decode_ceiling(storage.read(name)) == 10
    numbers(store, 9)
    assert len(storage.writes) == 2  # one reservation, two copies
    assert store.next() == 10
    assert len(storage.writes) == 4
    assert decode_ceiling(storage.read(SEQ_FILES[0])) == 20


def test_a_restart_continues_at_the_ceiling_skipping_the_rest_of_the_block():
    storage = MemoryStorage()
    store = SequenceStore(storage, block=100)
    assert numbers(store, 3) == [0, 1, 2]
    storage.cut_power()
    again = SequenceStore(storage, block=100)
    assert again.state == "ok"
    assert again.next() == 100


def test_one_damaged_copy_costs_nothing():
    for damaged, intact in ((0, 1), (1, 0)):
        storage = MemoryStorage()
        numbers(SequenceStore(storage, block=50), 60)  # ceiling 100
        storage.files[SEQ_FILES[damaged]] = b"balise-seq 1 100 deadbeef\n"
        store = SequenceStore(storage, block=50)
        assert store.state == "ok" and store.damaged_copies == 1
        assert store.next() == 100
        # The next reservation repairs the damaged copy.
        assert decode_ceiling(storage.read(SEQ_FILES[damaged])) == 150
        assert decode_ceiling(storage.read(SEQ_FILES[intact])) == 150


def test_a_missing_copy_is_not_damage():
    storage = MemoryStorage()
    numbers(SequenceStore(storage, block=10), 1)
    storage.remove(SEQ_FILES[0])
    store = SequenceStore(storage, block=10)
    assert store.state == "ok" and store.next() == 10


def test_the_larger_valid_copy_wins():
    storage = MemoryStorage()
    storage.replace(SEQ_FILES[0], encode_ceiling(3000))
    storage.replace(SEQ_FILES[1], encode_ceiling(2000))
    assert SequenceStore(storage).next() == 3000


def test_unreadable_state_refuses_to_guess_until_given_a_floor():
    storage = MemoryStorage()
    numbers(SequenceStore(storage, block=10), 5)
    storage.files[SEQ_FILES[0]] = b"\xff\x00garbage"
    storage.files[SEQ_FILES[1]] = b""
    store = SequenceStore(storage, block=10)
    assert store.state == "unreadable" and store.damaged_copies == 2
    error = raises(StateError, store.next)
    assert isinstance(error, FirmwareError)
    assert "seq.a" in str(error) and "restart_above" in str(error)
    gps_time_ms = 1732260000000
    store.restart_above(gps_time_ms)
    assert store.state == "ok"
    assert store.next() == gps_time_ms + 1
    # ...and that is durable.
    assert SequenceStore(storage, block=10).next() == gps_time_ms + 11


def test_restart_above_never_goes_back():
    store = SequenceStore(MemoryStorage(), block=10)
    numbers(store, 50)
    store.restart_above(7)
    assert store.next() == 50


def test_copies_are_checked_line_by_line():
    assert decode_ceiling(encode_ceiling(0)) == 0
    assert decode_ceiling(encode_ceiling(MAX_SEQ)) == MAX_SEQ
    good = encode_ceiling(123456)
    assert good.startswith(b"balise-seq 1 123456 ")
    for bad in (
        good[:-1],  # torn: no newline
        good.replace(b"123456", b"123457"),
        good.replace(b"balise-seq 1", b"balise-seq 2"),
        b"",
        b"\n",
        b"balise-seq 1 x 00000000\n",
        b"\xff\xfe\n",
    ):
        assert decode_ceiling(bad) is None, bad


def test_a_power_cut_at_any_write_never_reuses_a_number():
    # Cut the power at the 1st, 2nd, ... write from a running store, restart
    # on what survived, and check every number handed out is new.
    for cut_at in range(1, 12):
        storage = MemoryStorage()
        store = SequenceStore(storage, block=3)
        handed_out = []
        storage.cut_power_during(cut_at)
        try:
            for _ in range(100):
                handed_out.append(store.next())
        except PowerCut:
            pass
        storage.cut_power()
        restarted = SequenceStore(storage, block=3)
        later = numbers(restarted, 10)
        assert not handed_out or later[0] > max(handed_out), (cut_at, handed_out, later)
        assert handed_out + later == sorted(set(handed_out + later))


class OneCopyFails(MemoryStorage):
    def __init__(self, broken):
        MemoryStorage.__init__(self)
        self.broken = broken

    def replace(self, name, data):
        if name in self.broken:
            raise OSError(5, "bad sector")
        MemoryStorage.replace(self, name, data)


def test_one_copy_written_is_enough_to_hand_out_numbers():
    storage = OneCopyFails([SEQ_FILES[0]])
    store = SequenceStore(storage, block=10)
    assert numbers(store, 3) == [0, 1, 2]
    assert SequenceStore(storage, block=10).next() == 10


def test_a_dead_card_does_not_stop_the_numbers():
    storage = OneCopyFails(SEQ_FILES)
    store = SequenceStore(storage, block=10)
    # An SOS still needs a number: the store goes on in RAM and says so.
    assert numbers(store, 12) == list(range(12))
    assert store.storage_errors == 2 and "bad sector" in store.last_storage_error
    storage.broken = []
    assert numbers(store, 10)[-1] == 21
    assert SequenceStore(storage, block=10).next() == 30  # written again once the card works


def test_bad_arguments_are_refused():
    raises(ValueError, SequenceStore, MemoryStorage(), 0)
    raises(ValueError, SequenceStore(MemoryStorage()).restart_above, -1)
