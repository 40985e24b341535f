"""The gateway's default store: one SQLite file in WAL mode (docs/store.md).

`SqliteStore(path)` implements gateway.store.Store with the standard library's
sqlite3. Exactly once: `messages` has (unit, seq) as its primary key and
`write()` inserts with ON CONFLICT DO NOTHING RETURNING, so a batch learns in
the same transaction which of its records are new, and fills the typed tables
for those only.

Threads: one writer connection, guarded by a lock (the gateway's two ingest
threads use it; `purge()` may come from elsewhere and waits its turn). The
lock lets an urgent writer (`write(..., urgent=True)`: the alarm lane's small
transactions) go before every non-urgent one waiting, so an SOS waits for at
most the transaction being written, never for a queue of bulk batches. Reads
(`track`, `latest`) never use it: they borrow a connection of their own from a
small pool, so an HTTP request reads a committed snapshot (WAL lets readers
and the writer run at once) without ever holding up ingest.

Durability: `synchronous=NORMAL` by default. A commit survives the gateway
being killed (kill -9, a crash); on an OS crash or power loss the last few
commits can be lost, never the file. `durable_fsync=True` selects FULL:
every commit is fsynced, at a cost in throughput.

Checkpoints (copying the WAL into the database file, and its fsyncs) run on a
thread of their own, `_Checkpointer`, instead of inside the commit that
crosses SQLite's threshold, so a write does not wait for the disk.

Imports gateway.errors, gateway.store and protocol/ (to rebuild messages).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from operator import attrgetter
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any

from gateway.errors import StoreError
from gateway.store import Record, Store, TrackPoint
from gateway.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from protocol import codec, topics
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
# The writer's page cache, filled only as pages are used. A batch touches a page
# or two per unit in each unit-ordered table; with thousands of units, a cache
# that holds them all saves a read per page and lets a large batch commit
# without spilling pages to the WAL midway (measured: about a fifth faster at
# 10,000 units with batches of 1000, twice as fast with batches of 50,000).
WRITER_CACHE_KIB = 256 * 1024
# Rows per multi-row INSERT into `messages` (6 variables each; SQLite 3.32+
# allows 32766 variables, older builds 999, and the limit is read at open).
MESSAGE_ROWS_PER_STATEMENT = 500
# Purge deletes in chunks, each its own transaction, so ingest runs in between.
PURGE_CHUNK_ROWS = 5000
# Idle reader connections kept open; more are opened when needed and closed after.
READER_POOL_SIZE = 4
# A checkpoint after this many records written (or deleted) ... With 10,000
# units a record dirties about two pages, so the WAL peaks near 200 MB; a page
# dirtied again before the checkpoint is copied into the database only once.
CHECKPOINT_EVERY_RECORDS = 20_000
# ... or after this long with anything written at all.
CHECKPOINT_INTERVAL_S = 5.0
# The WAL file is cut back to this after a checkpoint has emptied it.
WAL_SIZE_LIMIT_BYTES = 256 * 1024 * 1024

_MESSAGE_COLUMNS = ("unit", "seq", "kind", "t_ms", "received_ms", "payload")
_message_values = attrgetter(*_MESSAGE_COLUMNS)
_RETURNING = " ON CONFLICT DO NOTHING RETURNING unit, seq"

_position_values = attrgetter("lat", "lon", "speed_mps", "heading_deg", "acc_m", "hdop", "fix")
_status_values = attrgetter("status", "incident", "lat", "lon")
_sos_values = attrgetter("action", "alarm_id", "lat", "lon")
_health_values = attrgetter(
    "cpu_temp_c",
    "disk_free_mb",
    "outbox_depth",
    "sats",
    "hdop",
    "uptime_s",
    "firmware",
    "supply_v",
)


def _position_row(record: Record) -> tuple[Any, ...]:
    return (record.unit, record.seq, record.t_ms, *_position_values(record.message))


def _status_row(record: Record) -> tuple[Any, ...]:
    return (record.unit, record.seq, record.t_ms, *_status_values(record.message))


def _sos_row(record: Record) -> tuple[Any, ...]:
    return (record.unit, record.seq, record.t_ms, *_sos_values(record.message))


def _health_row(record: Record) -> tuple[Any, ...]:
    return (record.unit, record.seq, record.t_ms, *_health_values(record.message))


def _presence_row(record: Record) -> tuple[Any, ...]:
    return (record.unit, record.seq, record.t_ms, record.received_ms, record.message.online)


def _insert(table: str, columns: int) -> str:
    return f"INSERT INTO {table} VALUES ({', '.join('?' * columns)})"


# kind -> (INSERT into its typed table, the row of a record)
_TYPED: dict[str, tuple[str, Callable[[Record], tuple[Any, ...]]]] = {
    "pos": (_insert("positions", 10), _position_row),
    "status": (_insert("statuses", 7), _status_row),
    "sos": (_insert("sos", 7), _sos_row),
    "health": (_insert("health", 11), _health_row),
    "online": (_insert("presence", 5), _presence_row),
}
KINDS = frozenset(_TYPED)

_TRACK = (
    "SELECT unit, seq, t_ms, lat, lon, speed_mps, heading_deg, acc_m, hdop, fix FROM positions"
    " WHERE unit = ? AND t_ms >= ? AND t_ms <= ? AND lat IS NOT NULL ORDER BY t_ms, seq"
)
# CROSS JOIN keeps `latest` the outer loop (SQLite does not reorder it): a few
# rows per unit, each finding its message by primary key, never a scan of history.
_LATEST = (
    "SELECT m.unit, m.seq, m.kind, m.t_ms, m.received_ms, m.payload"
    " FROM latest AS l CROSS JOIN messages AS m ON m.unit = l.unit AND m.seq = l.seq"
    " ORDER BY l.unit, l.kind"
)
_PURGE_CHUNK = (
    "DELETE FROM messages WHERE (unit, seq) IN"
    " (SELECT unit, seq FROM messages WHERE t_ms < ? LIMIT ?)"
)


def _rollback(conn: sqlite3.Connection) -> None:
    # Some errors (a full disk, I/O) have already rolled the transaction back.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _chunks(items: Sequence[Record], size: int) -> Iterator[Sequence[Record]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqliteStore(Store):
    """gateway.store.Store on one SQLite file; see the module docstring for threads."""

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        durable_fsync: bool = False,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> None:
        self.path = Path(path)
        self._synchronous = "FULL" if durable_fsync else "NORMAL"
        self._busy_timeout_ms = busy_timeout_ms
        self._write_lock = _WriteLock()
        self._pool_lock = threading.Lock()
        self._idle_readers: list[sqlite3.Connection] = []
        self._closed = False
        self._writer = self._open_writer()
        try:
            self._migrate()
            self._checkpointer = _Checkpointer(
                self._open_checkpointer(), self._write_lock, self.path
            )
        except BaseException:
            self._writer.close()
            raise
        limit = self._writer.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._message_rows = max(1, min(MESSAGE_ROWS_PER_STATEMENT, limit // 6))

    # -- opening -------------------------------------------------------------

    def _connect(self, *pragmas: str) -> sqlite3.Connection:
        """A connection in autocommit mode (transactions are begun and ended explicitly)."""
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            # The first statement that reads the file: "file is not a database" shows here.
            conn.execute("PRAGMA schema_version").fetchone()
            for pragma in pragmas:
                conn.execute(pragma)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{self.path} is not a usable SQLite database: {exc}") from exc
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode (journal mode {mode})")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
            # The _Checkpointer does it, beside the writer rather than inside a commit.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{self.path} is not a usable SQLite database: {exc}") from exc
        except StoreError:
            conn.close()
            raise
        return conn

    def _open_reader(self) -> sqlite3.Connection:
        return self._connect("PRAGMA query_only = ON")

    def _open_checkpointer(self) -> sqlite3.Connection:
        # A checkpoint syncs (or not) as the connection running it is set.
        return self._connect(
            f"PRAGMA synchronous = {self._synchronous}",
            f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}",
        )

    def _check_version(self) -> int:
        """The file's schema version; StoreError if it is not ours or newer than this code."""
        conn = self._writer
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        application_id: int = conn.execute("PRAGMA application_id").fetchone()[0]
        if application_id != APPLICATION_ID:
            (tables,) = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            if version or tables:
                raise StoreError(
                    f"{self.path} is a SQLite database but not a balise store "
                    f"(application_id {application_id:#x}, user_version {version})"
                )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has store schema version {version}, newer than the version "
                f"{SCHEMA_VERSION} this gateway knows: run a newer balise on it"
            )
        return version

    def _migrate(self) -> None:
        """Apply the pending steps of schema.MIGRATIONS in one transaction."""
        with self._guard("open"):
            if self._check_version() == SCHEMA_VERSION:
                return
            # Foreign keys off while tables may be rebuilt, checked before commit
            # (https://www.sqlite.org/lang_altertable.html#otheralter).
            conn = self._writer
            conn.execute("PRAGMA foreign_keys = OFF")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # Again under the write lock: another process may have migrated.
                    version = self._check_version()
                    for step in MIGRATIONS[version:]:
                        for statement in step:
                            conn.execute(statement)
                    if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                        raise StoreError(f"{self.path}: migration broke a foreign key")
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
                if version:
                    log.info(
                        "store %s migrated from version %d to %d",
                        self.path,
                        version,
                        SCHEMA_VERSION,
                    )
            finally:
                conn.execute("PRAGMA foreign_keys = ON")

    # -- guards --------------------------------------------------------------

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """sqlite3 errors become StoreError naming the file and what was being done."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {action} failed: {exc}") from exc

    @contextmanager
    def _transaction(self, action: str, urgent: bool = False) -> Iterator[sqlite3.Connection]:
        """The writer, locked, inside BEGIN IMMEDIATE … COMMIT (ROLLBACK on any error)."""
        with self._write_lock.hold(urgent), self._guard(action):
            if self._closed:
                raise StoreError(f"{self.path}: {action} on a closed store")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    @contextmanager
    def _reader(self, action: str) -> Iterator[sqlite3.Connection]:
        """A reader connection of the pool, for this thread alone until the block ends."""
        with self._pool_lock:
            if self._closed:
                raise StoreError(f"{self.path}: {action} on a closed store")
            conn = self._idle_readers.pop() if self._idle_readers else None
        if conn is None:
            conn = self._open_reader()
        try:
            with self._guard(action):
                yield conn
        finally:
            with self._pool_lock:
                keep = not self._closed and len(self._idle_readers) < READER_POOL_SIZE
                if keep:
                    self._idle_readers.append(conn)
            if not keep:
                conn.close()

    # -- Store ---------------------------------------------------------------

    def write(self, records: list[Record], *, urgent: bool = False) -> list[Record]:
        """Store the records not stored before, in one transaction; return those, in order."""
        if not records:
            return []
        unknown = {record.kind for record in records} - KINDS
        if unknown:
            raise StoreError(f"cannot store records of kind {', '.join(sorted(unknown))}")
        with self._transaction("write", urgent) as conn:
            new = self._insert_messages(conn, records)
            self._insert_typed(conn, new)
            self._checkpointer.written(len(new))
        return new

    def _insert_messages(self, conn: sqlite3.Connection, records: list[Record]) -> list[Record]:
        inserted: set[tuple[str, int]] = set()
        for chunk in _chunks(records, self._message_rows):
            statement = self._message_insert(len(chunk))
            values = list(chain.from_iterable(map(_message_values, chunk)))
            inserted.update(conn.execute(statement, values).fetchall())
        if len(inserted) == len(records):
            return list(records)  # all new: nothing repeated, not even within the batch
        new = []
        for record in records:
            key = (record.unit, record.seq)
            if key in inserted:
                inserted.discard(key)  # a repeat later in the batch is not new
                new.append(record)
        return new

    @staticmethod
    def _message_insert(rows: int) -> str:
        # One text per chunk size, so sqlite3's statement cache prepares it once.
        row = "(" + ", ".join("?" * len(_MESSAGE_COLUMNS)) + ")"
        return "INSERT INTO messages VALUES " + ", ".join([row] * rows) + _RETURNING

    @staticmethod
    def _insert_typed(conn: sqlite3.Connection, records: list[Record]) -> None:
        by_kind: dict[str, list[Record]] = {}
        for record in records:
            by_kind.setdefault(record.kind, []).append(record)
        for kind, group in by_kind.items():
            statement, row = _TYPED[kind]
            conn.executemany(statement, map(row, group))

    def track(self, unit: str, since_ms: int, until_ms: int) -> list[TrackPoint]:
        """The unit's positions with a fix, t in [since_ms, until_ms], in time order."""
        with self._reader("track") as conn:
            rows = conn.execute(_TRACK, (unit, since_ms, until_ms)).fetchall()
        return [TrackPoint(*row) for row in rows]

    def latest(self) -> list[Record]:
        """Per unit, the newest record (by t_ms, then seq) of each kind, decoded again."""
        with self._reader("latest") as conn:
            rows = conn.execute(_LATEST).fetchall()
        records = []
        for unit, seq, kind, t_ms, received_ms, payload in rows:
            try:
                message = codec.decode(topics.topic(unit, kind), payload)
            except ProtocolError as exc:
                # Stored payloads were valid when written; one that no longer
                # decodes must not hide every other unit's state.
                log.warning(
                    "store %s: %s %s seq %d no longer decodes: %s (payload %r)",
                    self.path,
                    unit,
                    kind,
                    seq,
                    exc,
                    bytes(payload[:80]),
                )
                continue
            records.append(Record(unit, seq, kind, t_ms, received_ms, bytes(payload), message))
        return records

    def purge(self, before_ms: int) -> int:
        """Delete every record with t_ms < before_ms (typed rows follow); return how many."""
        deleted = 0
        while True:
            with self._transaction("purge") as conn:
                count = conn.execute(_PURGE_CHUNK, (before_ms, PURGE_CHUNK_ROWS)).rowcount
                self._checkpointer.written(count)
            deleted += count
            if count < PURGE_CHUNK_ROWS:
                return deleted

    def close(self) -> None:
        """Close every connection; the last one to close checkpoints and removes the WAL."""
        with self._pool_lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle_readers = self._idle_readers, []
        for conn in idle:
            conn.close()
        self._checkpointer.stop()  # before taking the write lock, which it may be waiting for
        with self._write_lock.hold():
            try:
                self._writer.execute("PRAGMA optimize")
            except sqlite3.Error as exc:
                log.warning("store %s: PRAGMA optimize failed at close: %s", self.path, exc)
            self._writer.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"


class _WriteLock:
    """One writer at a time; an urgent one goes before the non-urgent ones waiting.

    threading.Lock wakes waiters in no set order, and a bulk writer that
    releases it and asks again at once usually gets it back; here a waiting
    urgent writer makes every non-urgent request wait until it has had its turn.
    """

    def __init__(self) -> None:
        self._turn = threading.Condition(threading.Lock())
        self._held = False
        self._waiting = 0
        self._urgent_waiting = 0

    def waiting(self) -> int:
        """How many writers wait for their turn (for tests and metrics)."""
        with self._turn:
            return self._waiting

    @contextmanager
    def hold(self, urgent: bool = False) -> Iterator[None]:
        with self._turn:
            self._waiting += 1
            self._urgent_waiting += urgent
            try:
                if urgent:
                    self._turn.wait_for(lambda: not self._held)
                else:
                    self._turn.wait_for(lambda: not self._held and not self._urgent_waiting)
            finally:
                self._waiting -= 1
                self._urgent_waiting -= urgent
            self._held = True
        try:
            yield
        finally:
            with self._turn:
                self._held = False
                self._turn.notify_all()


class _Checkpointer:
    """Copies the WAL into the database file on a thread of its own.

    SQLite's automatic checkpoint runs inside the commit that crosses its
    threshold, so that write would wait for the database file's fsync. Here
    the bulk of the copy runs beside the writer (WAL allows a checkpoint
    alongside a write), then a short second pass under the write lock copies
    what was committed meanwhile: the WAL is then wholly in the database, and
    the next commit starts it over from the beginning, so it stays bounded.
    The writer waits only for that second pass.
    """

    def __init__(self, conn: sqlite3.Connection, write_lock: _WriteLock, path: Path) -> None:
        self._conn = conn
        self._write_lock = write_lock
        self._path = path
        self._records = 0  # written since the last checkpoint; under the write lock
        self._due = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name=f"store-checkpoint {path.name}", daemon=True
        )
        self._thread.start()

    def written(self, records: int) -> None:
        """Called by the writer, under the write lock, in each transaction."""
        self._records += records
        if self._records >= CHECKPOINT_EVERY_RECORDS:
            self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait(CHECKPOINT_INTERVAL_S)
            self._due.clear()
            if self._stopping:
                return
            if not self._records:
                continue
            try:
                self._checkpoint()
            except sqlite3.Error as exc:
                # The WAL keeps every commit meanwhile; the next round tries again.
                log.warning("store %s: checkpoint failed: %s", self._path, exc)

    def _checkpoint(self) -> None:
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        with self._write_lock.hold():
            if self._stopping:
                return
            self._records = 0
            _, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if copied < frames:
            # A reader still holds an older snapshot; the next round finishes.
            log.debug("store %s: checkpoint copied %d of %d frames", self._path, copied, frames)

    def stop(self) -> None:
        self._stopping = True
        self._due.set()
        self._thread.join()
        self._conn.close()
