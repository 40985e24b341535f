"""A SqliteStore on a real database file in the test's temporary directory, and a way to look
inside that file with a connection of the test's own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from gateway.store.sqlite import SqliteStore
from tests.gateway.store.records import Query


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "balise.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(db_path)
    yield opened
    opened.close()


@pytest.fixture
def query(db_path: Path) -> Query:
    """Run one SQL statement on the database file through a connection of the test's own."""

    def run(sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(db_path)) as conn:
            return conn.execute(sql, args).fetchall()

    return run
