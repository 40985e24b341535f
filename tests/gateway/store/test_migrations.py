"""Opening a store: WAL, the schema version and its migrations, and files that are not a store."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from gateway.errors import GatewayError, StoreError
from gateway.store import schema
from gateway.store import sqlite as store_sqlite
from gateway.store.schema import APPLICATION_ID, SCHEMA_VERSION
from gateway.store.sqlite import SqliteStore
from tests.gateway.store.records import T0_MS, Query, drive


def set_user_version(db_path: Path, version: int) -> None:
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()


def test_a_fresh_store_has_the_current_version_in_wal_mode(db_path: Path, query: Query) -> None:
    SqliteStore(db_path).close()
    assert query("PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert query("PRAGMA application_id") == [(APPLICATION_ID,)]
    assert query("PRAGMA journal_mode") == [("wal",)]


def test_reopening_keeps_the_records(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        store.write(drive("KEN-M01", range(3)))
    with SqliteStore(db_path) as store:
        assert len(store.track("KEN-M01", 0, T0_MS * 2)) == 3
        assert store.write(drive("KEN-M01", range(3))) == []


def test_close_leaves_no_wal_behind(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        store.write(drive("KEN-M01", range(3)))
        store.track("KEN-M01", 0, T0_MS * 2)
        store.latest()
    # Every connection closed, the last one checkpointed and removed the WAL.
    assert not db_path.with_name(db_path.name + "-wal").exists()


def test_a_store_from_the_future_names_both_versions(db_path: Path) -> None:
    SqliteStore(db_path).close()
    set_user_version(db_path, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError) as caught:
        SqliteStore(db_path)
    message = str(caught.value)
    assert f"version {SCHEMA_VERSION + 1}" in message
    assert f"version {SCHEMA_VERSION} this gateway knows" in message
    assert str(db_path) in message
    assert isinstance(caught.value, GatewayError)


@pytest.mark.parametrize(
    "content",
    [
        b"not a database, only some text\n" * 40,
        b"\x00" * 8192,
        b"SQLite format 3\x00" + b"\xff" * 200,
    ],
    ids=["text", "zeros", "bad-header"],
)
def test_a_file_that_is_not_sqlite_names_the_path(db_path: Path, content: bytes) -> None:
    db_path.write_bytes(content)
    with pytest.raises(StoreError, match="not a usable SQLite database") as caught:
        SqliteStore(db_path)
    assert str(db_path) in str(caught.value)
    assert db_path.read_bytes() == content  # left as it was


def test_another_programs_sqlite_database_is_not_taken_over(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("CREATE TABLE accounts (name TEXT)")
        conn.commit()
    with pytest.raises(StoreError, match="not a balise store") as caught:
        SqliteStore(db_path)
    assert str(db_path) in str(caught.value)


def test_a_missing_directory_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "balise.db"
    with pytest.raises(StoreError, match="cannot open") as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)


def test_pending_steps_are_applied_at_open(
    db_path: Path, query: Query, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqliteStore(db_path) as store:
        store.write(drive("KEN-M01", range(2)))
    step = ("ALTER TABLE positions ADD COLUMN alt_m REAL",)
    monkeypatch.setattr(store_sqlite, "MIGRATIONS", (*schema.MIGRATIONS, step))
    monkeypatch.setattr(store_sqlite, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with SqliteStore(db_path) as store:
        assert len(store.track("KEN-M01", 0, T0_MS * 2)) == 2
    assert query("PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]
    assert "alt_m" in [row[1] for row in query("PRAGMA table_info(positions)")]


def test_a_failing_step_leaves_the_store_as_it_was(
    db_path: Path, query: Query, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqliteStore(db_path) as store:
        store.write(drive("KEN-M01", range(2)))
    steps = ("CREATE TABLE incidents (id TEXT)", "ALTER TABLE no_such_table ADD COLUMN x")
    monkeypatch.setattr(store_sqlite, "MIGRATIONS", (*schema.MIGRATIONS, steps))
    monkeypatch.setattr(store_sqlite, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="no_such_table") as caught:
        SqliteStore(db_path)
    assert str(db_path) in str(caught.value)
    assert query("PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert query("SELECT name FROM sqlite_schema WHERE name = 'incidents'") == []
    assert query("SELECT count(*) FROM messages") == [(2,)]
