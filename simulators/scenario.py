"""Scenarios: timed events on a simulated fleet, and what the command room must see.

    balise sim scenario FILE --deployment DIR --api URL --token TOKEN

A scenario file (TOML) names how many of the deployment's units to run, a list of
`[[event]]`s (at a second of the run: a unit's button, SOS, its link lost or back,
GPS lost in a tunnel or back) and a list of `[[expect]]`ations checked against the
gateway's HTTP API: by a second of the run, a unit's fields must have the given
values (`status`, `online`, `stale`, `sos` = "none" | "raised" | "acknowledged",
`assignment`). Throughout the run the runner also checks that no unit's position
ever moves back in time on the API (a late backlog must not pull a unit back).
The command exits 1 and names the first expectation that failed; a bad file is
refused with the line (event or expectation number) and field that is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from simulators.errors import SimulatorError
from simulators.fleet import Fleet, FleetOptions, SimUnit

ACTIONS = ("press", "sos", "cancel_sos", "link_lost", "link_back", "gps_lost", "gps_back")
FIELDS = ("status", "online", "stale", "sos", "assignment")
POLL_S = 0.5


class ScenarioFailed(SimulatorError):
    """An expectation did not hold; the message says which and what the API showed."""


@dataclass
class Event:
    at_s: float
    unit: int
    action: str
    value: str = ""


@dataclass
class Expectation:
    by_s: float
    unit: int
    fields: dict[str, Any]
    number: int


@dataclass
class Scenario:
    name: str
    units: int
    duration_s: float
    seed: int = 0
    events: list[Event] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)


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
    )
    for number, event in enumerate(document.get("event", []), 1):
        where = f"event {number}"
        action = event.get("action")
        if action not in ACTIONS:
            raise SimulatorError(f"{where}.action: {action!r} is not one of {', '.join(ACTIONS)}")
        unit = int(_number(event, "unit", where))
        if unit >= units:
            raise SimulatorError(
                f"{where}.unit: {unit} but the scenario runs {units} units (0-{units - 1})"
            )
        if action == "press" and not isinstance(event.get("status"), str):
            raise SimulatorError(f"{where}.status: a press needs the status button's name")
        scenario.events.append(
            Event(_number(event, "at_s", where), unit, action, event.get("status", ""))
        )
    for number, expect in enumerate(document.get("expect", []), 1):
        where = f"expect {number}"
        unit = int(_number(expect, "unit", where))
        if unit >= units:
            raise SimulatorError(f"{where}.unit: {unit} but the scenario runs {units} units")
        fields = {k: v for k, v in expect.items() if k not in ("by_s", "unit")}
        unknown = set(fields) - set(FIELDS)
        if unknown or not fields:
            raise SimulatorError(
                f"{where}: check one or more of {', '.join(FIELDS)}; got {sorted(fields)}"
            )
        scenario.expectations.append(
            Expectation(_number(expect, "by_s", where), unit, fields, number)
        )
    scenario.events.sort(key=lambda e: e.at_s)
    return scenario


def observed(unit: dict[str, Any], name: str) -> Any:
    if name == "sos":
        sos = unit.get("sos")
        if not sos or sos.get("cancelled"):
            return "none"
        return "acknowledged" if sos.get("acknowledged_by") else "raised"
    if name == "assignment":
        return (unit.get("assignment") or {}).get("state", "none")
    return unit.get(name)


class Runner:
    def __init__(self, scenario: Scenario, fleet: Fleet, api: httpx.AsyncClient) -> None:
        self.scenario = scenario
        self.fleet = fleet
        self.api = api
        self.last_t: dict[str, int] = {}

    def unit(self, index: int) -> SimUnit:
        return self.fleet.units[index]

    def apply(self, event: Event) -> None:
        unit = self.unit(event.unit)
        if event.action == "press":
            unit.press(event.value)
        elif event.action == "sos":
            unit.press("sos")
        elif event.action == "cancel_sos":
            unit.cancel_sos()
        elif event.action == "link_lost":
            unit.go_offline()
        elif event.action == "link_back":
            unit.come_online()
        elif event.action == "gps_lost":
            unit.lose_gps()
        elif event.action == "gps_back":
            unit.regain_gps()

    async def units(self) -> dict[str, dict[str, Any]]:
        response = await self.api.get("/api/units")
        if response.status_code != 200:
            raise ScenarioFailed(
                f"GET /api/units: HTTP {response.status_code}: {response.text[:200]}"
            )
        units = {u["id"]: u for u in response.json()}
        for unit_id, unit in units.items():  # the map never goes back in time
            position = unit.get("position")
            if position:
                if position["t"] < self.last_t.get(unit_id, 0):
                    raise ScenarioFailed(
                        f"{unit_id} moved back on the map: position time {position['t']} after "
                        f"{self.last_t[unit_id]}"
                    )
                self.last_t[unit_id] = position["t"]
        return units

    def unmet(self, expectation: Expectation, units: dict[str, dict[str, Any]]) -> str | None:
        unit_id = self.unit(expectation.unit).id
        shown = units.get(unit_id)
        if shown is None:
            return f"{unit_id} is not on the API"
        wrong = [
            f"{name} is {observed(shown, name)!r}, expected {want!r}"
            for name, want in expectation.fields.items()
            if observed(shown, name) != want
        ]
        return "; ".join(wrong) or None

    async def run(self, log: Any = print) -> None:
        started = time.monotonic()
        events = list(self.scenario.events)
        pending = sorted(self.scenario.expectations, key=lambda e: e.by_s)
        last_seen: dict[int, str] = {}
        while True:
            elapsed = time.monotonic() - started
            while events and events[0].at_s <= elapsed:
                event = events.pop(0)
                unit_id = self.unit(event.unit).id
                log(f"  {elapsed:6.1f} s  unit {unit_id}: {event.action} {event.value}")
                self.apply(event)
            units = await self.units()
            for expectation in list(pending):
                problem = self.unmet(expectation, units)
                if problem is None:
                    held = f"expect {expectation.number} holds: {expectation.fields}"
                    log(f"  {elapsed:6.1f} s  {held}")
                    pending.remove(expectation)
                elif elapsed > expectation.by_s:
                    raise ScenarioFailed(
                        f"expect {expectation.number} (unit {self.unit(expectation.unit).id}, "
                        f"by {expectation.by_s:.0f} s): {problem}"
                    )
                else:
                    last_seen[expectation.number] = problem
            if elapsed >= self.scenario.duration_s and not events and not pending:
                return
            await asyncio.sleep(POLL_S)


async def run_scenario(
    scenario: Scenario, deployment: Path, api_url: str, token: str, log: Any = print
) -> None:
    loop = asyncio.get_running_loop()
    fleet = Fleet(
        FleetOptions(deployment, scenario.units, seed=scenario.seed, connect_spread_s=1), loop
    )
    runner_task = asyncio.create_task(fleet.run())
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=10) as api:
            await Runner(scenario, fleet, api).run(log)
    finally:
        runner_task.cancel()
        await asyncio.gather(runner_task, return_exceptions=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the scenario (TOML); see simulators/scenarios/")
    parser.add_argument(
        "--deployment", required=True, type=Path, help="written by balise provision"
    )
    parser.add_argument("--api", default="http://127.0.0.1:8080", help="the gateway's HTTP address")
    parser.add_argument("--token", required=True, help="a bearer token: balise tokens create")


def run(args: argparse.Namespace) -> int:
    scenario = load(args.file)
    print(f"scenario: {scenario.name} ({scenario.units} units, {scenario.duration_s:.0f} s)")
    try:
        asyncio.run(run_scenario(scenario, args.deployment, args.api, args.token))
    except ScenarioFailed as exc:
        print(f"FAILED: {exc}")
        return 1
    print("passed")
    return 0
