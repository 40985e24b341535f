"""Where the gateway keeps history: the Store interface and its records.

`Store` is synchronous (the pipeline runs it on one dedicated thread); SQLite
implements it today (gateway/store/sqlite.py), PostgreSQL can implement the
same interface at scale. Exactly-once lives here: (unit, seq) is stored once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol


class Record(NamedTuple):
    """One uplink message (or one item of a batch) as the gateway received it.

    `message` is the decoded protocol message (protocol.messages.*; a batch is
    split into its Position items); `payload` the bytes as they arrived (for a
    batch item, the item re-encoded as a `pos` payload). A named tuple, not a
    frozen dataclass: the bulk lane makes, pickles and unpickles tens of
    thousands a second (docs/benchmarks.md), and a tuple is the cheapest at all three.
    """

    unit: str
    seq: int
    kind: str  # pos, status, sos, health, online
    t_ms: int  # the message's own time (GPS, or the unit's clock if clock_time)
    received_ms: int  # the gateway's clock when it arrived
    payload: bytes
    message: Any


@dataclass(frozen=True)
class TrackPoint:
    unit: str
    seq: int
    t_ms: int
    lat: float
    lon: float
    speed_mps: float | None
    heading_deg: float | None
    acc_m: float | None
    hdop: float | None
    fix: int


class Store(Protocol):
    def write(self, records: list[Record], *, urgent: bool = False) -> list[Record]:
        """Store every record not stored before, in one transaction; return those new ones.

        Durable (committed) when it returns; a record whose (unit, seq) is
        already stored is left alone, whatever its content. Writers take turns;
        an `urgent` one (the alarm lane) goes before writers already waiting.
        """
        ...

    def track(self, unit: str, since_ms: int, until_ms: int) -> list[TrackPoint]:
        """The unit's positions with a fix, t in [since_ms, until_ms], in time order."""
        ...

    def latest(self) -> list[Record]:
        """Per unit, the newest record (by t_ms) of each kind: enough to rebuild live state."""
        ...

    def purge(self, before_ms: int) -> int:
        """Delete history older than `before_ms` (by t_ms); return how many records went."""
        ...

    def close(self) -> None: ...
