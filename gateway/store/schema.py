"""The SQLite store's schema, as an ordered list of migration steps.

`MIGRATIONS[i]` takes a database from version i to version i + 1 (the version
lives in `PRAGMA user_version`); `SCHEMA_VERSION` is the newest. A step is a
tuple of single SQL statements, so gateway/store/sqlite.py can run every
pending step inside one transaction. Released steps never change: a change to
the schema is a new step appended at the end. Imports nothing.

Tables (docs/store.md draws them):
- `messages`: every record once, keyed by (unit, seq): exactly-once lives here.
- `positions`, `statuses`, `sos`, `health`, `presence`: the typed columns of
  each kind, for queries. Each row belongs to its `messages` row and a trigger
  deletes it with that row, so retention only deletes from `messages`.
- `latest`: per unit and kind, the (seq, t_ms) of the newest record by
  (t_ms, seq), kept by triggers on `messages`, so `latest()` reads a few rows
  per unit instead of scanning history.

Triggers rather than foreign keys with ON DELETE CASCADE: a foreign key from
`positions` needs a second (unit, seq) index on it, a third b-tree ordered by
unit that every batch would dirty one page per unit of (docs/store.md,
"Performance"); the triggers find each typed row by its own primary key.
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
    # Retention deletes by time across every unit; appended at its end, as t grows.
    "CREATE INDEX messages_t ON messages (t_ms)",
    # Clustered by (unit, t_ms): a track is one contiguous range of the table.
    # Its rows carry the message's t_ms, so (unit, t_ms, seq) finds one from its message.
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
        PRIMARY KEY (unit, seq)
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
        PRIMARY KEY (unit, seq)
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
        PRIMARY KEY (unit, seq)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE presence (
        unit TEXT NOT NULL,
        seq INTEGER NOT NULL,
        t_ms INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        online INTEGER NOT NULL,
        PRIMARY KEY (unit, seq)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE latest (
        unit TEXT NOT NULL,
        kind TEXT NOT NULL,
        seq INTEGER NOT NULL,
        t_ms INTEGER NOT NULL,
        PRIMARY KEY (unit, kind)
    ) WITHOUT ROWID
    """,
    # Fires only for rows really inserted (ON CONFLICT DO NOTHING skips it), so
    # a duplicate never counts; a late backfill (older t) leaves the row alone.
    """
    CREATE TRIGGER messages_insert_latest AFTER INSERT ON messages BEGIN
        INSERT INTO latest (unit, kind, seq, t_ms)
        VALUES (new.unit, new.kind, new.seq, new.t_ms)
        ON CONFLICT (unit, kind) DO UPDATE SET seq = excluded.seq, t_ms = excluded.t_ms
        WHERE (excluded.t_ms, excluded.seq) > (latest.t_ms, latest.seq);
    END
    """,
    # Retention: a message takes its typed row with it. When the newest record of
    # a kind goes, every older one of that unit and kind goes in the same purge.
    """
    CREATE TRIGGER messages_delete_latest AFTER DELETE ON messages BEGIN
        DELETE FROM latest WHERE unit = old.unit AND kind = old.kind AND seq = old.seq;
    END
    """,
    """
    CREATE TRIGGER messages_delete_pos AFTER DELETE ON messages WHEN old.kind = 'pos' BEGIN
        DELETE FROM positions WHERE unit = old.unit AND t_ms = old.t_ms AND seq = old.seq;
    END
    """,
    """
    CREATE TRIGGER messages_delete_status AFTER DELETE ON messages WHEN old.kind = 'status' BEGIN
        DELETE FROM statuses WHERE unit = old.unit AND seq = old.seq;
    END
    """,
    """
    CREATE TRIGGER messages_delete_sos AFTER DELETE ON messages WHEN old.kind = 'sos' BEGIN
        DELETE FROM sos WHERE unit = old.unit AND seq = old.seq;
    END
    """,
    """
    CREATE TRIGGER messages_delete_health AFTER DELETE ON messages WHEN old.kind = 'health' BEGIN
        DELETE FROM health WHERE unit = old.unit AND seq = old.seq;
    END
    """,
    """
    CREATE TRIGGER messages_delete_online AFTER DELETE ON messages WHEN old.kind = 'online' BEGIN
        DELETE FROM presence WHERE unit = old.unit AND seq = old.seq;
    END
    """,
    f"PRAGMA application_id = {APPLICATION_ID}",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)
