"""The command room's own records: accounts, tokens, sessions, the audit log, incidents.

A SQLite file of its own (`room.sqlite` beside the message store, or `room_db`
in gateway.toml): the store is the units' history, written in batches by the
ingest thread; this is the dispatchers' side, written a row at a time by the
HTTP API. Keeping them apart keeps the ingest's write lock free of logins.

Passwords are hashed with argon2id (argon2-cffi); bearer tokens and session ids
are random (`secrets`) and only their SHA-256 is stored, so a copy of the file
gives no way in. One connection behind a lock: every call is short.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.errors import GatewayError

ROLES = ("viewer", "dispatcher", "admin")
SESSION_SECONDS = 12 * 3600  # one long shift
NAME_MAX = 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL, created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    digest TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY, user TEXT NOT NULL, role TEXT NOT NULL, csrf TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, t_ms INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT, detail TEXT
);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY, lat REAL NOT NULL, lon REAL NOT NULL, title TEXT NOT NULL,
    note TEXT, created_ms INTEGER NOT NULL, created_by TEXT NOT NULL, closed_ms INTEGER
);
CREATE TABLE IF NOT EXISTS assignments (
    incident INTEGER NOT NULL, unit TEXT NOT NULL, cmd_id INTEGER NOT NULL,
    sent_ms INTEGER NOT NULL, by TEXT NOT NULL, PRIMARY KEY (incident, unit)
);
"""


class RoomError(GatewayError):
    """A bad account, role or incident request; the message says what."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: a dispatcher's session (with its CSRF token) or a machine's token."""

    name: str
    role: str
    csrf: str | None = None  # None for a bearer token: no cookie, no CSRF

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


def check_name(name: str) -> str:
    if not name or len(name) > NAME_MAX or not name.isprintable() or name != name.strip():
        raise RoomError(f"name {name!r}: 1-{NAME_MAX} printable characters, no outer spaces")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise RoomError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    return role


class RoomStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise RoomError(f"{self.path}: cannot open the room database: {exc}") from exc
        self._lock = threading.Lock()
        self._hasher = PasswordHasher()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- accounts and tokens ----------------------------------------------------

    def add_user(self, name: str, role: str, password: str) -> None:
        """Create or replace an account (a new password for an existing name)."""
        check_name(name)
        check_role(role)
        if len(password) < 8:
            raise RoomError("password: at least 8 characters")
        digest = self._hasher.hash(password)
        self._execute(
            "INSERT INTO users VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE"
            " SET role = excluded.role, hash = excluded.hash",
            (name, role, digest, _now_ms()),
        )
        self.audit("cli", "user_add", name, f"role {role}")

    def login(self, name: str, password: str) -> tuple[Principal, str] | None:
        """(principal, session id) for a right name and password, else None (audited by the API)."""
        rows = self._execute("SELECT role, hash FROM users WHERE name = ?", (name,))
        if not rows:
            self._hasher.hash(password)  # the same work as a real check: no user probing by time
            return None
        role, digest = rows[0]
        try:
            self._hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return None
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        self._execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
            (_digest(session), name, role, csrf, _now_ms() + SESSION_SECONDS * 1000),
        )
        return Principal(name, role, csrf=csrf), session

    def session(self, session: str) -> Principal | None:
        rows = self._execute(
            "SELECT user, role, csrf FROM sessions WHERE digest = ? AND expires_ms > ?",
            (_digest(session), _now_ms()),
        )
        return Principal(*rows[0]) if rows else None

    def logout(self, session: str) -> None:
        self._execute("DELETE FROM sessions WHERE digest = ?", (_digest(session),))

    def create_token(self, name: str, role: str) -> str:
        check_name(name)
        check_role(role)
        token = "bal_" + secrets.token_urlsafe(32)
        self._execute(
            "INSERT INTO tokens VALUES (?, ?, ?, ?)", (_digest(token), name, role, _now_ms())
        )
        self.audit("cli", "token_create", name, f"role {role}")
        return token

    def token(self, token: str) -> Principal | None:
        rows = self._execute("SELECT name, role FROM tokens WHERE digest = ?", (_digest(token),))
        return Principal(rows[0][0], rows[0][1]) if rows else None

    # -- audit log ------------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str | None = None, detail: str = "") -> None:
        self._execute(
            "INSERT INTO audit (t_ms, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
            (_now_ms(), actor, action, target, detail),
        )

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._execute(
            "SELECT t_ms, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        keys = ("t", "actor", "action", "target", "detail")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # -- incidents ------------------------------------------------------------------

    def create_incident(self, lat: float, lon: float, title: str, note: str, by: str) -> int:
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO incidents (lat, lon, title, note, created_ms, created_by)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (lat, lon, title, note, _now_ms(), by),
            )
            return int(cursor.lastrowid or 0)

    def assign(self, incident: int, unit: str, cmd_id: int, by: str) -> int:
        sent_ms = _now_ms()
        self._execute(
            "INSERT INTO assignments VALUES (?, ?, ?, ?, ?) ON CONFLICT (incident, unit)"
            " DO UPDATE SET cmd_id = excluded.cmd_id, sent_ms = excluded.sent_ms, by = excluded.by",
            (incident, unit, cmd_id, sent_ms, by),
        )
        return sent_ms

    def incidents(self, incident: int | None = None) -> list[dict[str, Any]]:
        """Open incidents, newest first (or the one asked for), with their assigned units."""
        where, args = ("WHERE id = ?", (incident,)) if incident is not None else ("", ())
        rows = self._execute(
            "SELECT id, lat, lon, title, note, created_ms, created_by FROM incidents"
            f" {where} ORDER BY id DESC",
            args,
        )
        assigned: dict[int, list[str]] = {}
        for inc, unit in self._execute("SELECT incident, unit FROM assignments ORDER BY sent_ms"):
            assigned.setdefault(inc, []).append(unit)
        keys = ("id", "lat", "lon", "title", "note", "created", "created_by")
        return [
            {**dict(zip(keys, row, strict=True)), "assigned": assigned.get(row[0], [])}
            for row in rows
        ]

    def assignments(self) -> list[tuple[int, str, int, int, str]]:
        """Every (incident, unit, cmd_id, sent_ms, by), oldest first: to rebuild live state."""
        return [
            (int(a), str(b), int(c), int(d), str(e))
            for a, b, c, d, e in self._execute(
                "SELECT incident, unit, cmd_id, sent_ms, by FROM assignments ORDER BY sent_ms"
            )
        ]
