"""track(), latest() and purge() on real database files."""

from __future__ import annotations

import pytest

from gateway.store import TrackPoint
from gateway.store import sqlite as store_sqlite
from gateway.store.sqlite import SqliteStore
from protocol.status import AVAILABLE, EN_ROUTE, ON_SCENE
from tests.gateway.store.records import (
    T0_MS,
    Query,
    drive,
    fix_lost,
    health,
    online,
    position,
    sos,
    status,
)


def test_track_is_the_units_fixes_inside_the_window_in_time_order(store: SqliteStore) -> None:
    unit = "KEN-M01"
    store.write(
        [
            position(unit, 1, T0_MS + 1000),
            position(unit, 2, T0_MS + 2000),
            fix_lost(unit, 3, T0_MS + 3000),
            position(unit, 4, T0_MS + 4000),
            position(unit, 5, T0_MS + 5000),
            position("KEN-C01", 6, T0_MS + 3000),  # another unit, inside the window
        ]
    )
    # A late backfill: higher seq, older time; it belongs between seq 1 and 2.
    store.write([position(unit, 9, T0_MS + 1500)])
    track = store.track(unit, T0_MS + 1000, T0_MS + 4000)  # both ends included
    assert [(p.seq, p.t_ms) for p in track] == [
        (1, T0_MS + 1000),
        (9, T0_MS + 1500),
        (2, T0_MS + 2000),
        (4, T0_MS + 4000),
    ]


def test_a_track_point_carries_the_position(store: SqliteStore) -> None:
    record = position("KEN-M01", 1, T0_MS)
    store.write([record])
    m = record.message
    assert store.track("KEN-M01", T0_MS, T0_MS) == [
        TrackPoint("KEN-M01", 1, T0_MS, m.lat, m.lon, 12.3, 270.5, 4.0, 0.9, 3)
    ]


def test_optional_fields_come_back_as_none(store: SqliteStore) -> None:
    store.write([position("KEN-M01", 1, T0_MS, speed_mps=None, acc_m=None, fix=2)])
    (point,) = store.track("KEN-M01", T0_MS, T0_MS)
    assert (point.speed_mps, point.acc_m, point.fix) == (None, None, 2)


def test_an_empty_window_or_an_unknown_unit_is_an_empty_track(store: SqliteStore) -> None:
    store.write(drive("KEN-M01", range(3)))
    assert store.track("KEN-M01", T0_MS + 10_000, T0_MS + 20_000) == []
    assert store.track("KEN-X99", 0, T0_MS * 2) == []
    assert store.track("KEN-M01", T0_MS + 2000, T0_MS) == []


def latest_by_unit_kind(store: SqliteStore) -> dict[tuple[str, str], int]:
    return {(r.unit, r.kind): r.seq for r in store.latest()}


def test_latest_is_the_newest_of_each_kind_per_unit(store: SqliteStore) -> None:
    records = [
        position("KEN-M01", 1, T0_MS + 1),
        status("KEN-M01", 2, T0_MS + 2, code=EN_ROUTE, incident="INC-7"),
        position("KEN-M01", 3, T0_MS + 3),
        sos("KEN-M01", 4, T0_MS + 4),
        health("KEN-M01", 5, T0_MS + 5),
        online("KEN-M01", 6, T0_MS + 6),
        position("KEN-C01", 1, T0_MS + 1),
    ]
    store.write(records)
    latest = store.latest()
    assert [(r.unit, r.kind, r.seq) for r in latest] == [
        ("KEN-C01", "pos", 1),
        ("KEN-M01", "health", 5),
        ("KEN-M01", "online", 6),
        ("KEN-M01", "pos", 3),
        ("KEN-M01", "sos", 4),
        ("KEN-M01", "status", 2),
    ]
    # Rebuilt from the stored payload: the same record as the one written.
    by_key = {(r.unit, r.seq): r for r in records}
    for record in latest:
        assert record == by_key[(record.unit, record.seq)]


def test_a_late_backfill_does_not_become_latest(store: SqliteStore) -> None:
    store.write([position("KEN-M01", 10, T0_MS + 10_000), status("KEN-M01", 11, T0_MS + 11_000)])
    # The unit's backlog arrives later: higher seqs, older GPS times.
    store.write(
        [
            position("KEN-M01", 20, T0_MS + 5000),
            status("KEN-M01", 21, T0_MS + 6000, code=ON_SCENE),
        ]
    )
    assert latest_by_unit_kind(store) == {("KEN-M01", "pos"): 10, ("KEN-M01", "status"): 11}
    store.write([position("KEN-M01", 22, T0_MS + 12_000)])
    assert latest_by_unit_kind(store)[("KEN-M01", "pos")] == 22


def test_latest_breaks_a_tie_in_time_by_seq(store: SqliteStore) -> None:
    store.write([status("KEN-M01", 5, T0_MS, code=EN_ROUTE)])
    store.write([status("KEN-M01", 4, T0_MS, code=AVAILABLE)])
    store.write([status("KEN-M01", 6, T0_MS, code=ON_SCENE)])
    (record,) = store.latest()
    assert (record.seq, record.message.status) == (6, ON_SCENE)


def test_a_duplicate_does_not_change_latest(store: SqliteStore) -> None:
    store.write([status("KEN-M01", 5, T0_MS, code=EN_ROUTE)])
    store.write([status("KEN-M01", 5, T0_MS + 9000, code=ON_SCENE)])  # same seq: a replay
    (record,) = store.latest()
    assert (record.t_ms, record.message.status) == (T0_MS, EN_ROUTE)


def test_latest_of_an_empty_store_is_empty(store: SqliteStore) -> None:
    assert store.latest() == []


def test_purge_deletes_older_records_from_every_table(store: SqliteStore, query: Query) -> None:
    store.write(
        [
            *drive("KEN-M01", range(10)),  # t = T0 + seq s
            status("KEN-M01", 10, T0_MS + 2000),
            sos("KEN-M01", 11, T0_MS + 3000),
            health("KEN-M01", 12, T0_MS + 4000),
            online("KEN-M01", 13, T0_MS + 6000),
        ]
    )
    assert store.purge(T0_MS + 5000) == 8  # seq 0-4 and the status, sos and health
    assert query("SELECT min(seq), count(*) FROM positions") == [(5, 5)]
    for table in ("statuses", "sos", "health"):
        assert query(f"SELECT count(*) FROM {table}") == [(0,)]
    assert query("SELECT count(*) FROM presence") == [(1,)]
    assert query("SELECT min(t_ms) FROM messages") == [(T0_MS + 5000,)]
    assert [p.seq for p in store.track("KEN-M01", 0, T0_MS * 2)] == [5, 6, 7, 8, 9]
    # A kind whose every record went is no longer in latest; the others are.
    assert latest_by_unit_kind(store) == {("KEN-M01", "pos"): 9, ("KEN-M01", "online"): 13}
    assert store.purge(T0_MS + 5000) == 0


def test_purge_runs_in_chunks(
    store: SqliteStore, query: Query, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_sqlite, "PURGE_CHUNK_ROWS", 7)
    store.write(drive("KEN-M01", range(50)) + drive("KEN-C01", range(50)))
    assert store.purge(T0_MS + 21_000) == 42  # six chunks of 7, then an empty one
    assert query("SELECT count(*) FROM messages") == [(58,)]
    assert query("SELECT count(*) FROM positions") == [(58,)]


def test_a_purged_record_sent_again_is_stored_again(store: SqliteStore) -> None:
    # Retention forgets (unit, seq) too: a replay older than retention comes back, once.
    record = position("KEN-M01", 1, T0_MS)
    store.write([record])
    store.purge(T0_MS + 1)
    assert store.write([record, record]) == [record]
