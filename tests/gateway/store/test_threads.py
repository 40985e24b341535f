"""The writer thread writes while other threads read (the HTTP API), purge and checkpoint."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

import pytest

from gateway.store import Record
from gateway.store import sqlite as store_sqlite
from gateway.store.sqlite import SqliteStore
from tests.gateway.store.records import T0_MS, Query, drive, status

UNITS = ("KEN-M01", "KEN-M02", "KEN-C01")
BATCHES = 120
PER_UNIT = 10  # positions per unit and batch


def in_thread(name: str, work: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def write_all(store: SqliteStore) -> None:
    for batch in range(BATCHES):
        seqs = range(batch * PER_UNIT, (batch + 1) * PER_UNIT)
        records = [r for unit in UNITS for r in drive(unit, seqs)]
        assert len(store.write(records)) == len(records)


def test_reading_while_another_thread_writes_does_not_fail(
    store: SqliteStore, query: Query, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Checkpoints every few batches, so they too run during the reads and writes.
    monkeypatch.setattr(store_sqlite, "CHECKPOINT_EVERY_RECORDS", 100)
    errors: list[BaseException] = []
    done = threading.Event()
    reads = [0]

    def read() -> None:
        while not done.is_set():
            for unit in UNITS:
                track = store.track(unit, 0, T0_MS * 2)
                seqs = [point.seq for point in track]
                # A committed snapshot: whole batches, in order.
                assert seqs == list(range(len(seqs)))
                assert len(seqs) % PER_UNIT == 0
            latest = store.latest()
            assert {r.unit for r in latest} <= set(UNITS)
            reads[0] += 1

    readers = [in_thread(f"reader {n}", read, errors) for n in range(3)]
    writer = in_thread("writer", lambda: write_all(store), errors)
    writer.join()
    done.set()
    for reader in readers:
        reader.join()
    assert not errors, errors
    assert reads[0] > 0
    assert query("SELECT count(*) FROM messages") == [(BATCHES * PER_UNIT * len(UNITS),)]
    for unit in UNITS:
        assert len(store.track(unit, 0, T0_MS * 2)) == BATCHES * PER_UNIT


def test_purging_from_another_thread_while_writing(store: SqliteStore, query: Query) -> None:
    errors: list[BaseException] = []
    cutoff_ms = T0_MS + 300_000  # seq < 300 of every unit
    purged = [0]

    def purge() -> None:
        while writer.is_alive():
            purged[0] += store.purge(cutoff_ms)

    writer = in_thread("writer", lambda: write_all(store), errors)
    purger = in_thread("purger", purge, errors)
    writer.join()
    purger.join()
    purged[0] += store.purge(cutoff_ms)
    assert not errors, errors
    assert purged[0] == 300 * len(UNITS)
    assert query("SELECT count(*) FROM positions") == [((BATCHES * PER_UNIT - 300) * len(UNITS),)]


def wait_for_waiters(store: SqliteStore, count: int) -> None:
    """Until `count` writers wait for the write lock (they block on a Condition)."""
    deadline = time.monotonic() + 10
    while store._write_lock.waiting() < count:
        assert time.monotonic() < deadline, "the writers never queued for the lock"
        time.sleep(0.005)


def test_an_urgent_write_goes_before_the_bulk_writes_already_waiting(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: list[BaseException] = []
    written: list[str] = []  # appended inside each transaction, so in the lock's order
    insert = store._insert_messages

    def recording_insert(conn: sqlite3.Connection, records: list[Record]) -> list[Record]:
        written.append(f"{records[0].unit}/{records[0].seq}")
        return insert(conn, records)

    monkeypatch.setattr(store, "_insert_messages", recording_insert)
    with store._write_lock.hold():  # a bulk transaction in progress
        bulk = [
            in_thread(f"bulk {n}", lambda n=n: store.write(drive("KEN-M01", [n])), errors)  # type: ignore[misc]
            for n in (1, 2)
        ]
        wait_for_waiters(store, 2)
        sos_record = status("KEN-M02", 1, T0_MS)
        urgent = in_thread("urgent", lambda: store.write([sos_record], urgent=True), errors)  # type: ignore[misc]
        wait_for_waiters(store, 3)
    for thread in [*bulk, urgent]:
        thread.join()
    assert not errors, errors
    assert written[0] == "KEN-M02/1", written  # before both bulk writes that waited longer
    assert sorted(written) == ["KEN-M01/1", "KEN-M01/2", "KEN-M02/1"]
