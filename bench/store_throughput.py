"""Write throughput of SqliteStore: batches of position records, as the gateway's writer sends.

Not a test (no assertion, not collected by pytest): prints positions/s. The records are built
and encoded before the clock starts, so the figures are the store's alone (messages, positions,
latest; one transaction per batch; checkpoints on their thread). Two phases on one file:
"fresh" fills an empty store; "steady" goes on writing once every unit has pages of its own in
each table, the state a store stays in for the rest of its life (docs/store.md, "Performance").
Then a pass of re-sent batches measures the duplicate path. The baseline, measured in the same
run on the same disk: the same batches inserted by bare `sqlite3` into one keyed table, the least
any store that dedupes by (unit, seq) must do. Run:

    .venv/bin/python bench/store_throughput.py [--fresh N] [--steady N] [--units N]
"""

from __future__ import annotations

import argparse
import gc
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from gateway.store import Record
from gateway.store.sqlite import SqliteStore
from protocol import codec
from protocol.messages import FIX_3D, Position

START_MS = 1_732_260_000_000


def positions(count: int, units: int, seed: int = 1) -> list[Record]:
    """`count` position records, round robin over `units` units, about a second apart per unit."""
    rng = random.Random(seed)
    records = []
    for index in range(count):
        unit = f"KEN-M{index % units:05d}"
        seq = index // units
        t_ms = START_MS + seq * 1000 + rng.randrange(1000)
        message = Position(
            unit=unit,
            seq=seq,
            t_ms=t_ms,
            lat=round(34.26 + rng.uniform(-0.05, 0.05), 6),
            lon=round(-6.58 + rng.uniform(-0.05, 0.05), 6),
            speed_mps=round(rng.uniform(0, 20), 2),
            heading_deg=round(rng.uniform(0, 360), 1),
            hdop=round(rng.uniform(0.6, 2.5), 2),
            fix=FIX_3D,
            reason="moved",
        )
        records.append(Record(unit, seq, "pos", t_ms, t_ms + 40, codec.encode(message), message))
    return records


class Phase:
    def __init__(self, store: SqliteStore, wal: Path) -> None:
        self.store = store
        self.wal = wal
        self.wal_peak_bytes = 0

    def run(self, batches: list[list[Record]]) -> tuple[float, float]:
        """(positions/s, CPU µs of the whole process, every thread, per position)."""
        started = time.perf_counter()
        cpu_started = time.process_time()
        for batch in batches:
            self.store.write(batch)
            self.wal_peak_bytes = max(self.wal_peak_bytes, self.wal.stat().st_size)
        elapsed_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started
        count = sum(map(len, batches))
        return count / elapsed_s, cpu_s / count * 1e6


def bare_sqlite(path: Path, batches: list[list[Record]], durable_fsync: bool) -> float:
    """Positions/s of bare sqlite3: one keyed table, one transaction per batch, same pragmas."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={'FULL' if durable_fsync else 'NORMAL'}")
    connection.execute(
        "CREATE TABLE m (unit TEXT, seq INTEGER, t_ms INTEGER, payload BLOB,"
        " PRIMARY KEY (unit, seq)) WITHOUT ROWID"
    )
    started = time.perf_counter()
    for batch in batches:
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO m VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(r.unit, r.seq, r.t_ms, r.payload) for r in batch],
        )
        connection.execute("COMMIT")
    elapsed_s = time.perf_counter() - started
    connection.close()
    return sum(map(len, batches)) / elapsed_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", type=int, default=300_000, help="positions into the empty store")
    parser.add_argument("--steady", type=int, default=300_000, help="positions after that")
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--durable-fsync", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="where the database goes")
    args = parser.parse_args()

    print(f"building {args.fresh + args.steady:,} records ...", flush=True)
    records = positions(args.fresh + args.steady, args.units)
    # Millions of long-lived fixture objects would make every full GC pass walk them all;
    # the gateway holds no such heap, so keep them out of the collector's way.
    gc.collect()
    gc.freeze()
    batches = [records[i : i + args.batch] for i in range(0, len(records), args.batch)]
    fresh, steady = batches[: args.fresh // args.batch], batches[args.fresh // args.batch :]
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        path = Path(directory) / "throughput.db"
        with SqliteStore(path, durable_fsync=args.durable_fsync) as store:
            phase = Phase(store, path.with_name(path.name + "-wal"))
            fresh_rate, fresh_cpu = phase.run(fresh)
            steady_rate, steady_cpu = phase.run(steady)
            dupes_rate, _ = phase.run(steady[:50])  # every record already stored
        size_mb = path.stat().st_size / 1e6
        baseline_rate = bare_sqlite(Path(directory) / "bare.db", batches, args.durable_fsync)
    sync = "FULL" if args.durable_fsync else "NORMAL"
    print(
        f"{args.units:,} units, batches of {args.batch}, synchronous={sync}:\n"
        f"  fresh   {fresh_rate:>9,.0f} positions/s  ({fresh_cpu:.0f} µs CPU each)\n"
        f"  steady  {steady_rate:>9,.0f} positions/s  ({steady_cpu:.0f} µs CPU each)\n"
        f"  re-sent {dupes_rate:>9,.0f} positions/s  (all duplicates)\n"
        f"  baseline {baseline_rate:>9,.0f} positions/s  (bare sqlite3, one keyed table)\n"
        f"  steady / baseline {steady_rate / baseline_rate:.2f}\n"
        f"  database {size_mb:.0f} MB, WAL peak {phase.wal_peak_bytes / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main()
