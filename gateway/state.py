"""The live picture of every unit, as the command room sees it.

Fed the records the store has just committed (and, at start, the newest
stored ones), it keeps per unit: the last position (only ever moving forward
in time: a late or backfilled record goes to history, never moves a unit
backwards on the map), the extrapolated position from the shared predictor,
the status and since when, presence from `online` and the last will, staleness
after silence, the SOS alarm and its stages, the latest health. Every change
is returned as the unit's id so that consoles get deltas, and gives the unit
a new `rev` (one counter for the whole state, only growing): a console that
gets two views of a unit out of order (an alarm frame overtakes a delta)
keeps the one with the higher rev. Two ingest threads (the lanes) and the API
change it: every method holds the lock. No I/O.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.store import Record
from protocol import predictor, status

# A unit is stale when silent longer than the longest heartbeat plus this grace.
DEFAULT_HEARTBEAT_S = 300.0
DEFAULT_GRACE_S = 60.0
# An acceptance stamped a little before the assignment was sent is still taken:
# the unit's GPS time and the gateway's clock differ by up to this much.
CLOCK_SKEW_MS = 5000


@dataclass
class Alarm:
    alarm_id: int
    raised_t_ms: int
    received_ms: int  # when the gateway first stored it
    lat: float | None = None
    lon: float | None = None
    acknowledged_by: str | None = None
    acknowledged_ms: int | None = None
    cancelled: bool = False


@dataclass
class Assignment:
    """A unit sent to an incident: pending until the unit reports en route for it."""

    incident: str
    cmd_id: int
    sent_ms: int
    by: str
    accepted_ms: int | None = None

    def view(self) -> dict[str, Any]:
        return {
            "incident": self.incident,
            "cmd_id": self.cmd_id,
            "sent": self.sent_ms,
            "by": self.by,
            "state": "pending" if self.accepted_ms is None else "accepted",
            "accepted": self.accepted_ms,
        }


@dataclass
class UnitState:
    unit: str
    type: str = "unknown"  # from gateway.toml's [fleet]: motorcycle, car
    position: Any = None  # the newest protocol Position with a fix
    fix: int | None = None  # fix mode of the newest position report
    status: int | None = None
    status_since_ms: int | None = None
    incident: str | None = None
    online: bool = False
    online_since_ms: int | None = None
    last_seen_ms: int | None = None  # gateway clock, any message
    health: Any = None  # a protocol Health: each field the newest value any health gave
    firmware: str | None = None  # from `online` (health leaves it out but every 10th time)
    alarm: Alarm | None = None
    stale: bool = False
    assignment: Assignment | None = None
    newest: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (t, seq) shown
    online_seqs: list[int] = field(default_factory=list)  # seqs of the last two online=true
    rev: int = 0  # the state's change counter at this unit's latest change

    def view(self, now_ms: int) -> dict[str, Any]:
        """The unit as the API and consoles show it."""
        position = None
        if self.position is not None:
            p = self.position
            lat, lon = predictor.predict_report(p, now_ms)
            position = {
                "lat": p.lat,
                "lon": p.lon,
                "t": p.t_ms,
                "speed_mps": p.speed_mps,
                "heading_deg": p.heading_deg,
                "accel_mps2": p.accel_mps2,
                "acc_m": p.acc_m,
                "hdop": p.hdop,
                "predicted": {"lat": lat, "lon": lon, "t": now_ms},
            }
        return {
            "id": self.unit,
            "rev": self.rev,
            "type": self.type,
            "status": status.name_of(self.status) if self.status else None,
            "status_code": self.status,
            "status_since": self.status_since_ms,
            "incident": self.incident,
            "assignment": self.assignment.view() if self.assignment else None,
            "online": self.online,
            "stale": self.stale,
            "last_seen": self.last_seen_ms,
            "fix": self.fix,
            "position": position,
            "sos": _alarm_view(self.alarm),
            "health": self._health_view(),
        }

    def _health_view(self) -> dict[str, Any] | None:
        if self.health is None:
            return None
        values: dict[str, Any] = self.health.values()
        values["firmware"] = self.firmware or values["firmware"]
        return values


def _alarm_view(alarm: Alarm | None) -> dict[str, Any] | None:
    if alarm is None:
        return None
    return {
        "alarm_id": alarm.alarm_id,
        "raised": alarm.raised_t_ms,
        "received": alarm.received_ms,
        "lat": alarm.lat,
        "lon": alarm.lon,
        "acknowledged_by": alarm.acknowledged_by,
        "acknowledged": alarm.acknowledged_ms,
        "cancelled": alarm.cancelled,
    }


class LiveState:
    """Changed by the ingest threads and the API, read by the API: every method holds `lock`."""

    def __init__(
        self,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        grace_s: float = DEFAULT_GRACE_S,
        fleet: dict[str, str] | None = None,
    ):
        self.units: dict[str, UnitState] = {}
        self.stale_after_ms = int((heartbeat_s + grace_s) * 1000)
        self.lock = threading.RLock()
        self._revs = itertools.count(1)
        self.fleet = dict(fleet or {})
        for unit_id in self.fleet:  # the deployment's units are shown before they first report
            self.unit(unit_id).stale = True

    def views(self, now_ms: int, unit_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The units (all, or those named) as the API shows them, sorted by id."""
        with self.lock:
            ids = sorted(self.units if unit_ids is None else set(unit_ids) & set(self.units))
            return [self.units[unit_id].view(now_ms) for unit_id in ids]

    def counts(self) -> tuple[int, int, int]:
        """(units, online, stale), without rendering a view: /metrics asks at every scrape."""
        with self.lock:
            units = self.units.values()
            return len(units), sum(u.online for u in units), sum(u.stale for u in units)

    def unit(self, unit_id: str) -> UnitState:
        state = self.units.get(unit_id)
        if state is None:
            state = self.units[unit_id] = UnitState(unit_id, self.fleet.get(unit_id, "unknown"))
        return state

    def apply(self, records: list[Record]) -> set[str]:
        """Take newly stored records; return the ids of the units that changed."""
        with self.lock:
            return self._apply(records)

    def _apply(self, records: list[Record]) -> set[str]:
        changed = set()
        for record in records:
            state = self.unit(record.unit)
            state.last_seen_ms = max(state.last_seen_ms or 0, record.received_ms)
            if state.stale:
                state.stale = False
            _APPLY[record.kind](state, record)
            changed.add(record.unit)
        self._touch(changed)
        return changed

    def _touch(self, unit_ids: Iterable[str]) -> None:
        for unit_id in unit_ids:
            self.units[unit_id].rev = next(self._revs)

    def tick(self, now_ms: int) -> set[str]:
        """Mark units stale after silence; return the ids that changed."""
        with self.lock:
            return self._tick(now_ms)

    def _tick(self, now_ms: int) -> set[str]:
        changed = set()
        for state in self.units.values():
            silent = state.last_seen_ms is None or now_ms - state.last_seen_ms > self.stale_after_ms
            if silent != state.stale:
                state.stale = silent
                changed.add(state.unit)
        self._touch(changed)
        return changed

    def acknowledge_sos(self, unit_id: str, alarm_id: int, by: str, now_ms: int) -> bool:
        """A dispatcher has the SOS; False if that alarm is not the unit's open one."""
        with self.lock:
            return self._acknowledge_sos(unit_id, alarm_id, by, now_ms)

    def _acknowledge_sos(self, unit_id: str, alarm_id: int, by: str, now_ms: int) -> bool:
        state = self.units.get(unit_id)
        alarm = state.alarm if state else None
        if alarm is None or alarm.alarm_id != alarm_id or alarm.cancelled:
            return False
        if alarm.acknowledged_by is None:
            alarm.acknowledged_by, alarm.acknowledged_ms = by, now_ms
            self._touch([unit_id])
        return True

    def assign(self, unit_id: str, assignment: Assignment) -> bool:
        """The unit was sent to an incident; False for a unit the gateway does not know."""
        with self.lock:
            state = self.units.get(unit_id)
            if state is None:
                return False
            state.assignment = assignment
            self._touch([unit_id])
            return True


def _newer(state: UnitState, record: Record) -> bool:
    """Only a record newer (in t, then seq) than what the unit shows moves the live picture."""
    key = (record.t_ms, record.seq)
    if key <= state.newest.get(record.kind, (-1, -1)):
        return False
    state.newest[record.kind] = key
    return True


def _apply_position(state: UnitState, record: Record) -> None:
    if not _newer(state, record):
        return
    message = record.message
    state.fix = message.fix
    if message.lat is not None:
        state.position = message


def _apply_status(state: UnitState, record: Record) -> None:
    if not _newer(state, record):
        return
    message = record.message
    if message.status != state.status:
        state.status_since_ms = record.t_ms
    state.status = message.status
    state.incident = message.incident
    assignment = state.assignment
    if (
        assignment is not None
        and assignment.accepted_ms is None
        and message.status == status.EN_ROUTE
        and message.incident == assignment.incident
        and record.t_ms >= assignment.sent_ms - CLOCK_SKEW_MS
    ):
        assignment.accepted_ms = record.t_ms


def _apply_sos(state: UnitState, record: Record) -> None:
    message = record.message
    alarm = state.alarm
    if message.action == "cancel":
        if alarm is not None and alarm.alarm_id == message.alarm_id:
            alarm.cancelled = True
        return
    if alarm is None or alarm.alarm_id != message.alarm_id:
        if alarm is not None and alarm.alarm_id > message.alarm_id and not alarm.cancelled:
            return  # a late repeat of an older alarm
        state.alarm = alarm = Alarm(message.alarm_id, record.t_ms, record.received_ms)
    if message.lat is not None and _newer(state, record):
        alarm.lat, alarm.lon = message.lat, message.lon


def _apply_health(state: UnitState, record: Record) -> None:
    # Since protocol 1.1 a health carries only what changed (firmware/core/health.py): a
    # field it leaves out keeps the value of an earlier one. A late, older health fills in
    # only what is still unknown.
    message = record.message
    newer = _newer(state, record)
    if state.health is None:
        state.health = message
        return
    merged = state.health.values()
    for name, value in message.values().items():
        if value is not None and (newer or merged[name] is None):
            merged[name] = value
    state.health = type(message)(**merged)


def _apply_online(state: UnitState, record: Record) -> None:
    # A last will's seq is reserved before its connection says online=true, so
    # it is lower than that online's seq: the will of connection k lies between
    # the online seqs of connections k-1 and k. It means "offline" only if k is
    # the latest connection; the will of an older one, delivered late, is old news.
    message = record.message
    seqs = state.online_seqs
    if message.online:
        if seqs and record.seq < seqs[-1]:
            return  # a late copy of an older connection's hello
        state.online_seqs = [*seqs[-1:], record.seq]
    elif len(seqs) == 2 and record.seq < seqs[0]:
        return
    if message.online != state.online:
        state.online_since_ms = record.received_ms
    state.online = message.online
    if message.firmware is not None:
        state.firmware = message.firmware


_APPLY = {
    "pos": _apply_position,
    "status": _apply_status,
    "sos": _apply_sos,
    "health": _apply_health,
    "online": _apply_online,
}
