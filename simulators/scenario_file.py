"""Scenario files: what `balise sim scenario` reads, checked before anything runs.

A scenario file (TOML) has a `[scenario]` table (name, units, duration_s, seed,
connect_spread_s), `[[event]]`s at a second of the run, on one unit (`unit` = its
index: a button, SOS, its link or GPS lost or back, a power cut, a reboot) or on
the whole fleet (the broker stopped, started or restarted; the gateway killed or
started), and `[[expect]]`ations: by `by_s` (looked at from `from_s`), a unit's
fields on the API, or the fleet's (all online, every record delivered, the
reconnects spread). docs/simulators.md lists them all. A bad file is refused
naming the event or expectation number and the field; so is an impossible order
(a reboot of a unit that has power, a start of a gateway that runs).
Imports simulators.errors only.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.errors import SimulatorError

UNIT_ACTIONS = (
    "press",
    "sos",
    "cancel_sos",
    "link_lost",
    "link_back",
    "gps_lost",
    "gps_back",
    "power_cut",
    "reboot",
)
# Events on the whole fleet: what they act on, which the runner must own.
FLEET_ACTIONS = {
    "broker_stop": "broker",
    "broker_start": "broker",
    "broker_restart": "broker",
    "gateway_kill": "gateway",
    "gateway_start": "gateway",
}
ACTIONS = UNIT_ACTIONS + tuple(FLEET_ACTIONS)
FIELDS = ("status", "online", "stale", "sos", "assignment")
FLEET_FIELDS = ("all_online", "delivered", "reconnect_spread_s")
CONNECT_SPREAD_S = 1.0


@dataclass
class Event:
    at_s: float
    unit: int | None  # None: an event on the whole fleet (the broker, the gateway)
    action: str
    value: str = ""
    number: int = 0


@dataclass
class Expectation:
    by_s: float
    unit: int | None  # None: about the whole fleet (FLEET_FIELDS)
    fields: dict[str, Any]
    number: int
    from_s: float = 0.0  # not looked at before this second of the run


@dataclass
class Scenario:
    name: str
    units: int
    duration_s: float
    seed: int = 0
    connect_spread_s: float = CONNECT_SPREAD_S
    events: list[Event] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)

    def has(self, action: str) -> bool:
        return any(event.action == action for event in self.events)


def load(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SimulatorError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SimulatorError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return parse(document)
    except SimulatorError as exc:
        raise SimulatorError(f"{path}: {exc}") from exc


def _number(table: dict[str, Any], key: str, where: str, lo: float = 0) -> float:
    value: Any = table.get(key)
    if type(value) not in (int, float) or value < lo:
        raise SimulatorError(f"{where}.{key}: a number ≥ {lo} is needed, got {value!r}")
    return float(value)


def _unit(table: dict[str, Any], where: str, units: int) -> int:
    unit = int(_number(table, "unit", where))
    if unit >= units:
        raise SimulatorError(
            f"{where}.unit: {unit} but the scenario runs {units} units (0-{units - 1})"
        )
    return unit


def parse(document: dict[str, Any]) -> Scenario:
    head = document.get("scenario")
    if not isinstance(head, dict):
        raise SimulatorError("[scenario]: missing table (name, units, duration_s)")
    units = int(_number(head, "units", "scenario", 1))
    scenario = Scenario(
        name=str(head.get("name", "unnamed")),
        units=units,
        duration_s=_number(head, "duration_s", "scenario", 1),
        seed=int(head.get("seed", 0)),
        connect_spread_s=_number(
            {"connect_spread_s": CONNECT_SPREAD_S, **head}, "connect_spread_s", "scenario"
        ),
    )
    for number, event in enumerate(document.get("event", []), 1):
        scenario.events.append(_event(event, f"event {number}", number, units))
    scenario.events.sort(key=lambda e: e.at_s)  # stable: the file's order at the same second
    _check_order(scenario.events)
    for number, expect in enumerate(document.get("expect", []), 1):
        scenario.expectations.append(_expectation(expect, number, scenario))
    return scenario


def _event(event: dict[str, Any], where: str, number: int, units: int) -> Event:
    action = event.get("action")
    if action not in ACTIONS:
        raise SimulatorError(f"{where}.action: {action!r} is not one of {', '.join(ACTIONS)}")
    at_s = _number(event, "at_s", where)
    if action in FLEET_ACTIONS:
        if "unit" in event:
            raise SimulatorError(f"{where}.unit: {action} acts on the whole fleet: remove unit")
        return Event(at_s, None, action, number=number)
    unit = _unit(event, where, units)
    if action == "press" and not isinstance(event.get("status"), str):
        raise SimulatorError(f"{where}.status: a press needs the status button's name")
    return Event(at_s, unit, action, event.get("status", ""), number)


# action -> (what it needs to be, what it leaves): the state of a unit's power, the broker
# and the gateway along the run, so that a file cannot reboot a unit that has power.
_TRANSITIONS = {
    "power_cut": (True, False),
    "reboot": (False, True),
    "broker_stop": (True, False),
    "broker_start": (False, True),
    "broker_restart": (True, True),
    "gateway_kill": (True, False),
    "gateway_start": (False, True),
}


def _check_order(events: list[Event]) -> None:
    up: dict[Any, tuple[bool, int]] = {}  # unit index, "broker", "gateway" -> (up, event no.)
    for event in events:
        if event.action not in _TRANSITIONS:
            continue
        key = FLEET_ACTIONS.get(event.action, event.unit)
        needs, leaves = _TRANSITIONS[event.action]
        now, since = up.get(key, (True, 0))
        if now != needs:
            what = (
                f"unit {event.unit} {'has power' if now else 'has no power'}"
                if isinstance(key, int)
                else f"the {key} is {'running' if now else 'down'}"
            )
            after = f" (since event {since})" if since else ""
            raise SimulatorError(
                f"event {event.number}.action: {event.action} at {event.at_s:g} s, "
                f"but {what} then{after}"
            )
        up[key] = (leaves, event.number)


def _expectation(expect: dict[str, Any], number: int, scenario: Scenario) -> Expectation:
    where = f"expect {number}"
    by_s = _number(expect, "by_s", where)
    from_s = _number({"from_s": 0, **expect}, "from_s", where)
    if from_s > by_s:
        raise SimulatorError(f"{where}.from_s: {from_s:g} is after by_s = {by_s:g}")
    fields = {k: v for k, v in expect.items() if k not in ("by_s", "from_s", "unit")}
    if "unit" in expect:
        unit: int | None = _unit(expect, where, scenario.units)
        allowed: tuple[str, ...] = FIELDS
    else:
        unit, allowed = None, FLEET_FIELDS
    unknown = set(fields) - set(allowed)
    if unknown or not fields:
        about = "a unit" if unit is not None else "the fleet (no unit)"
        raise SimulatorError(
            f"{where}: about {about}, check one or more of {', '.join(allowed)}; "
            f"got {sorted(fields)}"
        )
    if unit is None:
        _check_fleet_fields(fields, where, scenario)
    return Expectation(by_s, unit, fields, number, from_s)


def _check_fleet_fields(fields: dict[str, Any], where: str, scenario: Scenario) -> None:
    if "all_online" in fields and not isinstance(fields["all_online"], bool):
        raise SimulatorError(f"{where}.all_online: true or false, got {fields['all_online']!r}")
    if "delivered" in fields and fields["delivered"] is not True:
        raise SimulatorError(
            f"{where}.delivered: only `delivered = true` can be checked, "
            f"got {fields['delivered']!r}"
        )
    if "reconnect_spread_s" in fields:
        _number(fields, "reconnect_spread_s", where)
        if not (scenario.has("broker_stop") or scenario.has("broker_restart")):
            raise SimulatorError(
                f"{where}.reconnect_spread_s: no broker_stop or broker_restart event to "
                "reconnect after"
            )
