"""The outbox journal on real files: torn tails and random damage never crash recovery.

CPython only (tmp_path, hypothesis); the portable cases are in test_outbox.py.
"""

import shutil
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.core.outbox import DONE, JOURNAL, KIND_OF_TYPE, Outbox, parse_journal, parse_ranges
from firmware.core.storage import FileStorage
from protocol import codec
from tests.firmware.core.test_outbox import UNIT, health, held, position, sos, status


def write_journal(directory: Path) -> bytes:
    """A journal with every kind of frame: synced adds, a flush, done marks; ends with an add."""
    outbox = Outbox(UNIT, FileStorage(str(directory)))
    outbox.add(status(1), 0)
    for seq in range(2, 8):
        outbox.add(position(seq), 0)
    outbox.add(health(8), 0)
    outbox.link_down(100)
    outbox.add(sos(9), 200)
    for token, _ in outbox.next_publishes(3):  # sos 9, status 1, position 7
        outbox.on_puback(token)
    outbox.add(status(10), 300)
    return (directory / JOURNAL).read_bytes()


def replay(frames: list[tuple[int, bytes, int]]) -> dict[int, bytes]:
    """What recovery must give back from these intact frames: seq -> payload."""
    records: dict[int, bytes] = {}
    for type_code, body, _ in frames:
        if type_code == DONE:
            for first, last in parse_ranges(body) or []:
                for seq in [s for s in records if first <= s <= last]:
                    del records[seq]
        else:
            seq = codec.decode("balise/v1/%s/%s" % (UNIT, KIND_OF_TYPE[type_code]), body).seq
            records.setdefault(seq, body)
    return records


def recover(directory: Path, data: bytes) -> tuple[Outbox, dict[int, bytes]]:
    (directory / JOURNAL).write_bytes(data)
    outbox = Outbox(UNIT, FileStorage(str(directory)))
    return outbox, held(outbox)


def test_the_reference_journal_holds_what_the_outbox_held(tmp_path: Path) -> None:
    data = write_journal(tmp_path)
    frames, skipped = parse_journal(data)
    assert skipped == 0
    assert sorted(replay(frames)) == [2, 3, 4, 5, 6, 8, 10]
    assert frames[-1][0] == ord("s")


def test_truncating_the_last_record_at_every_byte_never_crashes(tmp_path: Path) -> None:
    data = write_journal(tmp_path / "original")
    frames, _ = parse_journal(data)
    last_start = len(data) - frames[-1][2]
    complete = replay(frames[:-1])
    for cut in range(last_start, len(data)):
        directory = tmp_path / ("cut-%d" % cut)
        directory.mkdir()
        outbox, recovered = recover(directory, data[:cut])
        assert recovered == complete, cut
        assert outbox.recovered_dropped_bytes == cut - last_start
        # The torn bytes are gone from the file, so new records follow clean frames.
        outbox.add(status(11), 0)
        again = Outbox(UNIT, FileStorage(str(directory)))
        assert again.recovered_dropped_bytes == 0
        assert sorted(held(again)) == sorted([*complete, 11])
    _, recovered = recover(tmp_path / "original", data)
    assert recovered == replay(frames)


def test_truncating_anywhere_recovers_every_complete_record(tmp_path: Path) -> None:
    data = write_journal(tmp_path)
    frames, _ = parse_journal(data)
    ends = []
    offset = 0
    for _, _, length in frames:
        offset += length
        ends.append(offset)
    for cut in range(len(data) + 1):
        whole = [frame for frame, end in zip(frames, ends, strict=True) if end <= cut]
        _, recovered = recover(tmp_path, data[:cut])
        assert recovered == replay(whole), cut


_JOURNAL_CACHE: dict[str, bytes] = {}


def reference_journal() -> bytes:
    if "data" not in _JOURNAL_CACHE:
        directory = Path(tempfile.mkdtemp(prefix="balise-journal-"))
        try:
            _JOURNAL_CACHE["data"] = write_journal(directory)
        finally:
            shutil.rmtree(directory)
    return _JOURNAL_CACHE["data"]


damage = st.lists(
    st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=255)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(damage=damage)
def test_flipped_bytes_never_crash_recovery_and_cost_only_the_damaged_frames(
    damage: list[tuple[int, int]],
) -> None:
    original = reference_journal()
    frames, _ = parse_journal(original)
    data = bytearray(original)
    for position_hint, value in damage:
        data[position_hint % len(data)] ^= value or 0xFF
    # Two flips of one byte may cancel out: compare with the original.
    touched = {offset for offset in range(len(data)) if data[offset] != original[offset]}
    intact = []
    start = 0
    for frame in frames:
        if not any(start <= offset < start + frame[2] for offset in touched):
            intact.append(frame)
        start += frame[2]
    directory = Path(tempfile.mkdtemp(prefix="balise-damage-"))
    try:
        outbox, recovered = recover(directory, bytes(data))
        assert recovered == replay(intact)
        assert outbox.recovered_dropped_bytes == len(data) - sum(f[2] for f in intact)
        assert Outbox(UNIT, FileStorage(str(directory))).recovered_dropped_bytes == 0
    finally:
        shutil.rmtree(directory)


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=3000))
def test_any_bytes_at_all_never_crash_recovery(garbage: bytes) -> None:
    directory = Path(tempfile.mkdtemp(prefix="balise-garbage-"))
    try:
        outbox, recovered = recover(directory, garbage + reference_journal() + garbage)
        assert recovered == replay(parse_journal(reference_journal())[0])
        assert outbox.recovered_dropped_bytes == 2 * len(garbage)
    finally:
        shutil.rmtree(directory)
