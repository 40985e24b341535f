"""Records as the gateway's pipeline hands them to a store: real messages, encoded by the codec."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from gateway.store import Record
from protocol import codec
from protocol.messages import (
    FIX_3D,
    FIX_NONE,
    SOS_RAISE,
    Health,
    Message,
    Online,
    Position,
    Sos,
    StatusChange,
)
from protocol.status import AVAILABLE

# What the `query` fixture returns: run one SQL statement on the store's file, get its rows.
Query = Callable[..., list[tuple[Any, ...]]]

T0_MS = 1_732_260_000_000
RECEIVED_AFTER_MS = 40


def record(message: Message, received_ms: int | None = None) -> Record:
    m: Any = message
    if received_ms is None:
        received_ms = m.t_ms + RECEIVED_AFTER_MS
    return Record(m.unit, m.seq, m.KIND, m.t_ms, received_ms, codec.encode(m), m)


def position(unit: str, seq: int, t_ms: int, **fields: Any) -> Record:
    values: dict[str, Any] = {
        "lat": round(34.26 + seq * 1e-4, 5),
        "lon": round(-6.58 - seq * 1e-4, 5),
        "speed_mps": 12.3,
        "heading_deg": 270.5,
        "acc_m": 4.0,
        "hdop": 0.9,
        "fix": FIX_3D,
    }
    values.update(fields)
    return record(Position(unit=unit, seq=seq, t_ms=t_ms, **values))


def fix_lost(unit: str, seq: int, t_ms: int) -> Record:
    return record(Position(unit=unit, seq=seq, t_ms=t_ms, fix=FIX_NONE, reason="fix_lost"))


def status(unit: str, seq: int, t_ms: int, code: int = AVAILABLE, **fields: Any) -> Record:
    return record(StatusChange(unit=unit, seq=seq, t_ms=t_ms, status=code, **fields))


def sos(
    unit: str, seq: int, t_ms: int, action: str = SOS_RAISE, alarm_id: int | None = None
) -> Record:
    alarm = seq if alarm_id is None else alarm_id
    message = Sos(unit=unit, seq=seq, t_ms=t_ms, action=action, alarm_id=alarm, lat=34.2, lon=-6.5)
    return record(message)


def health(unit: str, seq: int, t_ms: int, **fields: Any) -> Record:
    values: dict[str, Any] = {"cpu_temp_c": 51.0, "disk_free_mb": 900, "firmware": "1.0.0"}
    values.update(fields)
    return record(Health(unit=unit, seq=seq, t_ms=t_ms, **values))


def online(unit: str, seq: int, t_ms: int, up: bool = True) -> Record:
    return record(Online(unit=unit, seq=seq, t_ms=t_ms, online=up, clock_time=not up))


def drive(unit: str, seqs: Iterable[int], step_ms: int = 1000) -> list[Record]:
    """Positions of one unit, `step_ms` apart, t following seq."""
    return [position(unit, seq, T0_MS + seq * step_ms) for seq in seqs]


def keys(records: Iterable[Record]) -> list[tuple[str, int]]:
    return [(r.unit, r.seq) for r in records]
