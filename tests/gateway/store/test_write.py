"""write(): exactly once by (unit, seq), one transaction, typed rows for the new records only."""

from __future__ import annotations

import pytest

from gateway.errors import StoreError
from gateway.store import Record
from gateway.store.sqlite import SqliteStore
from tests.gateway.store.records import (
    T0_MS,
    Query,
    drive,
    fix_lost,
    health,
    keys,
    online,
    position,
    sos,
    status,
)


def test_new_records_are_returned_in_order(store: SqliteStore) -> None:
    batch = drive("KEN-M01", range(5))
    assert store.write(batch) == batch


def test_an_empty_batch_stores_nothing(store: SqliteStore, query: Query) -> None:
    assert store.write([]) == []
    assert query("SELECT count(*) FROM messages") == [(0,)]


def test_a_stored_record_is_not_stored_or_returned_again(store: SqliteStore, query: Query) -> None:
    store.write(drive("KEN-M01", range(3)))
    again = drive("KEN-M01", range(2, 5))  # seq 2 is a re-send
    assert keys(store.write(again)) == [("KEN-M01", 3), ("KEN-M01", 4)]
    assert store.write(again) == []
    assert query("SELECT count(*) FROM messages") == [(5,)]
    assert query("SELECT count(*) FROM positions") == [(5,)]


def test_a_duplicate_with_another_payload_keeps_the_first(store: SqliteStore, query: Query) -> None:
    first = position("KEN-M01", 7, T0_MS, lat=34.1)
    store.write([first])
    replay = position("KEN-M01", 7, T0_MS + 5000, lat=35.9)
    assert replay.payload != first.payload
    assert store.write([replay]) == []
    assert query("SELECT t_ms, payload FROM messages") == [(T0_MS, first.payload)]
    assert query("SELECT lat FROM positions") == [(34.1,)]


def test_duplicates_within_one_batch_count_once(store: SqliteStore, query: Query) -> None:
    first = position("KEN-M01", 1, T0_MS, lat=34.1)
    repeat = position("KEN-M01", 1, T0_MS + 1, lat=34.2)
    other = position("KEN-M01", 2, T0_MS + 2)
    assert store.write([first, repeat, other, first]) == [first, other]
    assert query("SELECT seq, lat FROM positions ORDER BY seq") == [
        (1, 34.1),
        (2, other.message.lat),
    ]


def test_another_unit_with_the_same_seq_is_new(store: SqliteStore) -> None:
    store.write([position("KEN-M01", 1, T0_MS)])
    other = position("KEN-C01", 1, T0_MS)
    assert store.write([other]) == [other]


def test_a_batch_larger_than_one_statement_dedupes_across_chunks(
    store: SqliteStore, query: Query
) -> None:
    # More rows than one multi-row INSERT takes, with repeats far apart in the batch.
    batch = drive("KEN-M01", range(1200)) + drive("KEN-M01", range(0, 1300, 2))
    new = store.write(batch)
    assert keys(new) == [("KEN-M01", seq) for seq in [*range(1200), *range(1200, 1300, 2)]]
    assert query("SELECT count(*) FROM messages") == [(1250,)]
    assert query("SELECT count(*) FROM positions") == [(1250,)]


def test_every_kind_fills_its_typed_table(store: SqliteStore, query: Query) -> None:
    unit = "KEN-M01"
    store.write(
        [
            position(unit, 1, T0_MS + 1),
            status(unit, 2, T0_MS + 2, code=3, incident="INC-42", lat=34.3, lon=-6.6),
            sos(unit, 3, T0_MS + 3),
            health(unit, 4, T0_MS + 4, sats=9, supply_v=12.6),
            online(unit, 5, T0_MS + 5, up=False),
        ]
    )
    assert query("SELECT seq, kind FROM messages ORDER BY seq") == [
        (1, "pos"),
        (2, "status"),
        (3, "sos"),
        (4, "health"),
        (5, "online"),
    ]
    assert query("SELECT status, incident, lat, lon FROM statuses") == [(3, "INC-42", 34.3, -6.6)]
    assert query("SELECT action, alarm_id, lat, lon FROM sos") == [("raise", 3, 34.2, -6.5)]
    assert query("SELECT cpu_temp_c, disk_free_mb, sats, firmware, supply_v FROM health") == [
        (51.0, 900, 9, "1.0.0", 12.6)
    ]
    assert query("SELECT t_ms, received_ms, online FROM presence") == [(T0_MS + 5, T0_MS + 45, 0)]


def test_a_lost_fix_is_stored_without_a_position(store: SqliteStore, query: Query) -> None:
    lost = fix_lost("KEN-M01", 1, T0_MS)
    assert store.write([lost]) == [lost]
    assert query("SELECT lat, lon, fix FROM positions") == [(None, None, 1)]
    assert query("SELECT payload FROM messages") == [(lost.payload,)]


def test_an_unknown_kind_is_refused_and_nothing_is_stored(store: SqliteStore, query: Query) -> None:
    good = position("KEN-M01", 1, T0_MS)
    batch = Record("KEN-M01", 2, "batch", T0_MS, T0_MS, b"{}", None)
    with pytest.raises(StoreError, match="kind batch"):
        store.write([good, batch])
    assert query("SELECT count(*) FROM messages") == [(0,)]


def test_a_failing_batch_is_rolled_back_whole(store: SqliteStore, query: Query) -> None:
    good = position("KEN-M01", 1, T0_MS)
    wrong = status("KEN-M01", 2, T0_MS)
    broken = Record("KEN-M01", 2, "pos", T0_MS, T0_MS, wrong.payload, wrong.message)
    with pytest.raises(AttributeError):  # a status has no fix: a bug upstream, not stored
        store.write([good, broken])
    assert query("SELECT count(*) FROM messages") == [(0,)]
    assert store.write([good]) == [good]  # the store is usable afterwards


def test_writing_to_a_closed_store_is_a_store_error(store: SqliteStore) -> None:
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.write([position("KEN-M01", 1, T0_MS)])
    store.close()  # twice is harmless
