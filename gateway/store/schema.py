"""The SQLite store's schema, as an ordered list of migration steps.

`MIGRATIONS[i]` takes a database from version i to version i + 1 (the version
lives in `PRAGMA user_version`); `SCHEMA_VERSION` is the newest. A step is a
tuple of single SQL statements, so gateway/store/sqlite.py can run every
pending step inside one transaction. Released steps never change: a change to
the schema is a new step appended at the end. Imports nothing.

Tables (docs/store.md draws them):
- `messages`: every record once, keyed by (unit, seq): exactly-once lives here.
- `positions`, `statuses`, `sos`, `health`, `presence`: the typed columns of
  each kind, for queries; each row belongs to its `messages` row and goes with
  it (ON DELETE CASCADE), so retention only deletes from `messages`.
- `latest`: per unit and kind, the (seq, t_ms) of the newest record by
  (t_ms, seq), kept by a trigger on `messages`, so `latest()` reads a few
  rows per unit instead of scanning history.
"""

# "bali" in ASCII: marks a SQLite file as a balise store (PRAGMA application_id).
APPLICATION_ID = 0x62616C69

_V1 = (
    """
    CREATE TABLE messages (
        unit TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        t_ms INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        payload BLOB NOT NULL,
        PRIMARY KEY (unit, seq)
    ) WITHOUT ROWID
    """,
    # Retention deletes by time across every unit.
    "CREATE INDEX messages_t ON messages (t_ms)",
    # Clustered by (unit, t_ms): a track is one contiguous range of the table.
    """
    CREATE TABLE positions (
        unit TEXT NOT NULL,
        seq INTEGER NOT NULL,
        t_ms INTEGER NOT NULL,
        lat REAL,
        lon REAL,
        speed_mps REAL,
        heading_deg REAL,
        acc_m REAL,
        hdop REAL,
        fix INTEGER NOT NULL,
        PRIMARY KEY (unit, t_ms, seq)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE statuses (
        unit TEXT NOT NULL,
        seq INTEGER NOT NULL,
        t_ms INTEGER NOT NULL,
        status INTEGER NOT NULL,
        incident TEXT,
        lat REAL,
        lon REAL,
        PRIMARY KEY (unit, seq),
        FOREIGN KEY (unit, seq) REFERENCES messages (unit, seq) ON DELETE CASCADE
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE sos (
        unit TEXT NOT NULL,
        seq INTEGER NOT NULL,
        t_ms INTEGER NOT NULL,
        action TEXT NOT NULL,
        alarm_id INTEGER NOT NULL,
        lat REAL,
        lon REAL,
        PRIMARY KEY (unit, seq),
        FOREIGN KEY (unit, seq) REFERENCES messages (unit, seq) ON DELETE CASCADE
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE health (
        unit TEXT NOT NULL,
        seq INTEGER NOT NULL,
        t_ms INTEGER NOT NULL,
        cpu_temp_c REAL,
        disk_free_mb INTEGER,
        outbox_depth INTEGER,
        sats INTEGER,
        hdop REAL,
        uptime_s INTEGER,
        firmware TEXT,
        supply_v REAL,
        PRIMARY KEY (unit, seq),
        FOREIGN KEY (unit, seq) REFERENCES messages (unit, seq) ON DELETE CASCADE
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE presence (
        unit TEXT NOT NULL,
        seq INTEGER NOT NULL,
        t_ms INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        online INTEGER NOT NULL,
        PRIMARY KEY (unit, seq),
        FOREIGN KEY (unit, seq) REFERENCES messages (unit, seq) ON DELETE CASCADE
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE latest (
        unit TEXT NOT NULL,
        kind TEXT NOT NULL,
        seq INTEGER NOT NULL,
        t_ms INTEGER NOT NULL,
        PRIMARY KEY (unit, kind),
        FOREIGN KEY (unit, seq) REFERENCES messages (unit, seq) ON DELETE CASCADE
    ) WITHOUT ROWID
    """,
    "CREATE INDEX latest_seq ON latest (unit, seq)",
    # Fires only for rows really inserted (ON CONFLICT DO NOTHING skips it), so
    # a duplicate never counts; a late backfill (older t) leaves the row alone.
    """
    CREATE TRIGGER messages_latest AFTER INSERT ON messages BEGIN
        INSERT INTO latest (unit, kind, seq, t_ms)
        VALUES (new.unit, new.kind, new.seq, new.t_ms)
        ON CONFLICT (unit, kind) DO UPDATE SET seq = excluded.seq, t_ms = excluded.t_ms
        WHERE (excluded.t_ms, excluded.seq) > (latest.t_ms, latest.seq);
    END
    """,
    f"PRAGMA application_id = {APPLICATION_ID}",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)
