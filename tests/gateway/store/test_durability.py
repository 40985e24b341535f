"""A write that returned survives kill -9 of the process (WAL with synchronous=NORMAL).

The writer runs in a child process that prints a line after each write() returns; the test
kills it with SIGKILL (no close, no atexit, no checkpoint) on seeing that line, then opens the
file again in this process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.store.sqlite import SqliteStore
from tests.gateway.store.records import T0_MS, Query

REPO = Path(__file__).resolve().parents[3]
BATCH = 50

# argv: database path, batches to write (0: forever), durable_fsync
WRITER = f"""
import sys, time
from gateway.store.sqlite import SqliteStore
from tests.gateway.store.records import drive
store = SqliteStore(sys.argv[1], durable_fsync=sys.argv[3] == "1")
batches = int(sys.argv[2])
written = 0
while not batches or written < batches:
    new = store.write(drive("KEN-M01", range(written * {BATCH}, (written + 1) * {BATCH})))
    written += 1
    print("written", written, len(new), flush=True)
time.sleep(60)
"""


@contextmanager
def writer(
    db_path: Path, batches: int, durable_fsync: bool = False
) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db_path), str(batches), "1" if durable_fsync else "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def kill_after(process: subprocess.Popen[str], batches: int) -> int:
    """Read the child's lines until `batches` writes have returned, SIGKILL it at once."""
    assert process.stdout is not None and process.stderr is not None
    written = 0
    while written < batches:
        line = process.stdout.readline()
        assert line, f"the writer exited early:\n{process.stderr.read()}"
        _, number, new = line.split()
        assert int(new) == BATCH
        written = int(number)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    return written


def test_a_returned_write_survives_kill_9(db_path: Path) -> None:
    with writer(db_path, batches=1) as process:
        kill_after(process, 1)
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.stat().st_size > 0  # the records were in the WAL, not yet in the database file
    with SqliteStore(db_path) as store:
        track = store.track("KEN-M01", T0_MS, T0_MS + 10**9)
    assert [point.seq for point in track] == list(range(BATCH))


def test_kill_9_mid_stream_loses_no_returned_batch_and_splits_none(
    db_path: Path, query: Query
) -> None:
    with writer(db_path, batches=0) as process:
        written = kill_after(process, 20)  # the child keeps writing until the kill lands
    with SqliteStore(db_path) as store:
        stored = [point.seq for point in store.track("KEN-M01", T0_MS, T0_MS + 10**9)]
    assert len(stored) >= written * BATCH
    assert len(stored) % BATCH == 0, "a batch was stored in part"
    assert stored == list(range(len(stored)))
    assert query("SELECT count(*) FROM messages") == [(len(stored),)]


def test_durable_fsync_stores_the_same(db_path: Path) -> None:
    with writer(db_path, batches=2, durable_fsync=True) as process:
        kill_after(process, 2)
    with SqliteStore(db_path, durable_fsync=True) as store:
        assert len(store.track("KEN-M01", T0_MS, T0_MS + 10**9)) == 2 * BATCH
