"""`balise sim scenario FILE`: run a scenario file on a simulated fleet and check it.

    balise sim scenario FILE --start-broker --start-gateway
    balise sim scenario FILE --deployment DIR --api URL --token TOKEN [--db STORE]

The file (simulators/scenario_file.py) is read and checked first, and so is what
its events need the runner to own. Then the runner sets up its testbed
(simulators/testbed.py: a provisioned deployment, mosquitto and the gateway when
asked to start them), runs the fleet (simulators/fleet.py) with a ledger of every
record each unit makes (simulators/ledger.py), applies the events at their
second, and polls the gateway's API (and, for `delivered`, its store) until every
expectation has held by its time. Throughout, no unit's position may move back in
time on the API and no unit may reuse a seq. The command exits 1 naming the first
expectation that failed (and keeps the work directory with the logs and the store).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from simulators.errors import SimulatorError
from simulators.fleet import Fleet, FleetOptions, SimUnit
from simulators.ledger import Ledger, read_store
from simulators.scenario_file import (
    FLEET_ACTIONS,
    Event,
    Expectation,
    Scenario,
    load,
    parse,
)
from simulators.testbed import Testbed, TestbedOptions

__all__ = ["Scenario", "ScenarioFailed", "load", "parse", "run_scenario"]

OWNER_FLAGS = {"broker": "--start-broker", "gateway": "--start-gateway"}
POLL_S = 0.5


class ScenarioFailed(SimulatorError):
    """An expectation did not hold; the message says which and what the API showed."""


def check_owned(scenario: Scenario, options: TestbedOptions) -> None:
    """Refuse, before anything starts, events and checks that need what the runner lacks."""
    owned = {"broker": options.start_broker, "gateway": options.start_gateway}
    for event in scenario.events:
        needs = FLEET_ACTIONS.get(event.action)
        if needs is not None and not owned[needs]:
            raise SimulatorError(
                f"event {event.number}.action: {event.action} needs the runner to own the "
                f"{needs}: add {OWNER_FLAGS[needs]}"
            )
    for expectation in scenario.expectations:
        if "delivered" in expectation.fields and not (options.start_gateway or options.db):
            raise SimulatorError(
                f"expect {expectation.number}.delivered: needs the gateway's store: add "
                "--start-gateway, or --db with the running gateway's store"
            )


def observed(unit: dict[str, Any], name: str) -> Any:
    if name == "sos":
        sos = unit.get("sos")
        if not sos or sos.get("cancelled"):
            return "none"
        return "acknowledged" if sos.get("acknowledged_by") else "raised"
    if name == "assignment":
        return (unit.get("assignment") or {}).get("state", "none")
    return unit.get(name)


def spread(times: list[float]) -> float:
    """The span of the middle 80 % of `times` (10th to 90th percentile), in their unit."""
    ordered = sorted(times)
    if len(ordered) < 2:
        return 0.0
    low = ordered[int(0.1 * (len(ordered) - 1))]
    high = ordered[round(0.9 * (len(ordered) - 1))]
    return high - low


def histogram(times: list[float], since: float) -> str:
    """Per-second counts of `times` after `since`, and the busiest 100 ms."""
    offsets = sorted(t - since for t in times)
    seconds: dict[int, int] = {}
    tenths: dict[int, int] = {}
    for offset in offsets:
        seconds[int(offset // 1)] = seconds.get(int(offset // 1), 0) + 1
        tenths[int(offset // 0.1)] = tenths.get(int(offset // 0.1), 0) + 1
    counts = ", ".join(f"{s}-{s + 1} s: {n}" for s, n in sorted(seconds.items()))
    return (
        f"first at +{offsets[0]:.1f} s, last at +{offsets[-1]:.1f} s; per second: {counts}; "
        f"at most {max(tenths.values())} in any 100 ms"
    )


class Runner:
    def __init__(
        self,
        scenario: Scenario,
        fleet: Fleet,
        api: httpx.AsyncClient,
        testbed: Testbed,
        ledger: Ledger,
    ) -> None:
        self.scenario = scenario
        self.fleet = fleet
        self.api = api
        self.testbed = testbed
        self.ledger = ledger
        self.last_t: dict[str, int] = {}
        self.started_ms = int(time.time() * 1000)
        self.broker_down_at: float | None = None  # monotonic
        self.broker_back_at: float | None = None
        self.gateway_down_since: int | None = None  # the event that killed it
        self.rows: dict[str, dict[int, tuple[str, int]]] | None = None

    def unit(self, index: int) -> SimUnit:
        return self.fleet.units[index]

    async def apply(self, event: Event) -> str:
        """Do `event`; returns what to add to its log line."""
        if event.unit is None:
            return await self.apply_to_fleet(event)
        return UNIT_EVENTS[event.action](self, event, self.unit(event.unit)) or event.value

    def _press(self, event: Event, unit: SimUnit) -> str:
        unit.press(event.value)
        return ""

    def _sos(self, event: Event, unit: SimUnit) -> str:
        unit.raise_sos()
        return ""

    def _cancel_sos(self, event: Event, unit: SimUnit) -> str:
        unit.cancel_sos()
        return ""

    def _link_lost(self, event: Event, unit: SimUnit) -> str:
        unit.go_offline()
        return ""

    def _link_back(self, event: Event, unit: SimUnit) -> str:
        unit.come_online()
        return ""

    def _gps_lost(self, event: Event, unit: SimUnit) -> str:
        unit.lose_gps()
        return ""

    def _gps_back(self, event: Event, unit: SimUnit) -> str:
        unit.regain_gps()
        return ""

    def _power_cut(self, event: Event, unit: SimUnit) -> str:
        self.ledger.power_cut(unit.id, unit.core.outbox)
        held = unit.core.outbox.depth()
        unit.power_cut()
        return f"(records in its outbox: {held})"

    def _reboot(self, event: Event, unit: SimUnit) -> str:
        unit.reboot()
        outbox = unit.core.outbox
        lost = self.ledger.rebooted(unit.id, outbox)
        return (
            f"(records back from its journal: {outbox.recovered_records}, lost with the RAM: "
            f"{lost}; new seqs above {self.ledger.units[unit.id].floor})"
        )

    async def apply_to_fleet(self, event: Event) -> str:
        began = time.monotonic()
        if event.action in ("broker_stop", "broker_restart"):
            self.broker_down_at = began
        if event.action == "gateway_kill":
            self.gateway_down_since = event.number
        await self.testbed.run(event.action)
        if event.action in ("broker_start", "broker_restart"):
            self.broker_back_at = time.monotonic()
        if event.action == "gateway_start":
            self.gateway_down_since = None
        return f"(took {time.monotonic() - began:.1f} s)"

    async def units(self) -> dict[str, dict[str, Any]] | None:
        """The API's units, or None while the runner has the gateway down."""
        if self.gateway_down_since is not None:
            return None
        try:
            response = await self.api.get("/api/units")
        except httpx.TransportError as exc:
            raise ScenarioFailed(f"GET /api/units: the gateway does not answer: {exc}") from exc
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

    async def read_rows(self) -> dict[str, dict[int, tuple[str, int]]]:
        assert self.testbed.db is not None
        ids = {u.id for u in self.fleet.units}
        return await asyncio.to_thread(read_store, self.testbed.db, ids, self.started_ms - 1000)

    def unmet(
        self, expectation: Expectation, units: dict[str, dict[str, Any]] | None
    ) -> str | None:
        if expectation.unit is None:
            return self.fleet_unmet(expectation, units)
        if units is None:
            return f"the gateway is down (killed at event {self.gateway_down_since})"
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

    def fleet_unmet(
        self, expectation: Expectation, units: dict[str, dict[str, Any]] | None
    ) -> str | None:
        wrong = []
        fields = expectation.fields
        if "all_online" in fields:
            if units is None:
                wrong.append(f"the gateway is down (killed at event {self.gateway_down_since})")
            else:
                wrong += self._online_unmet(units, fields["all_online"])
        if "reconnect_spread_s" in fields:
            wrong += self._spread_unmet(fields["reconnect_spread_s"])
        if "delivered" in fields:
            assert self.rows is not None
            problem = self.ledger.check(self.rows)
            if problem:
                wrong.append(f"not delivered: {problem}")
        return "; ".join(wrong) or None

    def _online_unmet(self, units: dict[str, dict[str, Any]], want: bool) -> list[str]:
        ids = [u.id for u in self.fleet.units]
        live = [i for i in ids if (units.get(i) or {}).get("online") and not units[i].get("stale")]
        if want and len(live) < len(ids):
            off = sorted(set(ids) - set(live))
            return [f"{len(live)} of {len(ids)} units online and fresh; not: {', '.join(off[:5])}"]
        if not want and len(live) == len(ids):
            return [f"all {len(ids)} units are online"]
        return []

    def _spread_unmet(self, want: float) -> list[str]:
        if self.broker_down_at is None or self.broker_back_at is None:
            return ["the broker has not been restarted yet"]
        down = self.broker_down_at
        units = [u for u in self.fleet.units if u.powered]
        back = [u.connected_at for u in units if u.connected_at and u.connected_at > down]
        if len(back) < len(units):
            return [f"{len(back)} of {len(units)} units reconnected since the broker went down"]
        got = spread([t for t in back if t is not None])
        if got < want:
            return [f"reconnects spread over {got:.2f} s (10th-90th percentile), expected ≥ {want}"]
        return []

    def held(self, expectation: Expectation) -> str:
        text = f"expect {expectation.number} holds: {expectation.fields}"
        if "reconnect_spread_s" in expectation.fields and self.broker_back_at is not None:
            times = [u.connected_at or 0.0 for u in self.fleet.units if u.powered]
            text += f"\n           reconnects: {histogram(times, self.broker_back_at)}"
        if "delivered" in expectation.fields and self.rows is not None:
            text += f"\n           store: {self.ledger.summary(self.rows)}"
        return text

    async def run(self, log: Any = print) -> None:
        started = time.monotonic()
        events = list(self.scenario.events)
        pending = sorted(self.scenario.expectations, key=lambda e: e.by_s)
        while True:
            elapsed = time.monotonic() - started
            while events and events[0].at_s <= elapsed:
                event = events.pop(0)
                who = "fleet" if event.unit is None else f"unit {self.unit(event.unit).id}"
                log(f"  {elapsed:6.1f} s  {who}: {event.action} {await self.apply(event)}".rstrip())
                elapsed = time.monotonic() - started
            if self.ledger.problems:
                raise ScenarioFailed(self.ledger.problems[0])
            units = await self.units()
            if any("delivered" in e.fields and e.from_s <= elapsed for e in pending):
                self.rows = await self.read_rows()
            for expectation in [e for e in pending if e.from_s <= elapsed]:
                problem = self.unmet(expectation, units)
                if problem is None:
                    log(f"  {elapsed:6.1f} s  {self.held(expectation)}")
                    pending.remove(expectation)
                elif elapsed > expectation.by_s:
                    about = (
                        "the fleet"
                        if expectation.unit is None
                        else f"unit {self.unit(expectation.unit).id}"
                    )
                    raise ScenarioFailed(
                        f"expect {expectation.number} ({about}, by {expectation.by_s:.0f} s): "
                        f"{problem}"
                    )
            if elapsed >= self.scenario.duration_s and not events and not pending:
                return
            await asyncio.sleep(POLL_S)


# A unit's event -> what the runner does (scenario_file.UNIT_ACTIONS, all of them).
UNIT_EVENTS: dict[str, Callable[[Runner, Event, SimUnit], str]] = {
    "press": Runner._press,
    "sos": Runner._sos,
    "cancel_sos": Runner._cancel_sos,
    "link_lost": Runner._link_lost,
    "link_back": Runner._link_back,
    "gps_lost": Runner._gps_lost,
    "gps_back": Runner._gps_back,
    "power_cut": Runner._power_cut,
    "reboot": Runner._reboot,
}


async def run_scenario(scenario: Scenario, options: TestbedOptions, log: Any = print) -> None:
    """Run `scenario` on what `options` gives or starts; ScenarioFailed names what did not hold."""
    check_owned(scenario, options)
    testbed = Testbed(options, scenario.units)
    loop = asyncio.get_running_loop()
    ledger = Ledger()
    storage_dir = None
    if scenario.has("power_cut"):  # the unit's files must outlive its RAM
        storage_dir = options.work / "units"
        shutil.rmtree(storage_dir, ignore_errors=True)  # no journal from an earlier run
        storage_dir.mkdir(parents=True)
    fleet_task = None
    try:
        await asyncio.to_thread(testbed.start)
        fleet = Fleet(
            FleetOptions(
                testbed.deployment,
                scenario.units,
                seed=scenario.seed,
                connect_spread_s=scenario.connect_spread_s,
                storage_dir=storage_dir,
                outbox_factory=ledger.outbox,
            ),
            loop,
        )
        fleet_task = asyncio.create_task(fleet.run())
        headers = {"Authorization": f"Bearer {testbed.token}"}
        async with httpx.AsyncClient(base_url=testbed.api_url, headers=headers, timeout=10) as api:
            await Runner(scenario, fleet, api, testbed, ledger).run(log)
    finally:
        if fleet_task is not None:
            fleet_task.cancel()
            await asyncio.gather(fleet_task, return_exceptions=True)
        await asyncio.to_thread(testbed.close)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the scenario (TOML); see simulators/scenarios/")
    parser.add_argument(
        "--deployment",
        type=Path,
        help="written by balise provision (default: provision one in the work directory)",
    )
    parser.add_argument(
        "--start-broker",
        action="store_true",
        help="run mosquitto on the deployment (needed to stop or restart it)",
    )
    parser.add_argument(
        "--start-gateway",
        action="store_true",
        help="run the gateway with a new store (needed to kill it; gives `delivered` its store)",
    )
    parser.add_argument("--api", default="http://127.0.0.1:8080", help="the gateway's HTTP address")
    parser.add_argument(
        "--token", help="a bearer token (balise tokens create), unless --start-gateway"
    )
    parser.add_argument("--db", type=Path, help="the running gateway's store, read for `delivered`")
    parser.add_argument(
        "--work",
        type=Path,
        help="logs, store and unit files (default: a temporary directory, removed if it passes)",
    )


def run(args: argparse.Namespace) -> int:
    scenario = load(args.file)
    work = args.work or Path(tempfile.mkdtemp(prefix="balise-scenario-"))
    options = TestbedOptions(
        work=work,
        deployment=args.deployment,
        start_broker=args.start_broker,
        start_gateway=args.start_gateway,
        api_url=args.api,
        token=args.token,
        db=args.db,
    )
    print(f"scenario: {scenario.name} ({scenario.units} units, {scenario.duration_s:.0f} s)")
    try:
        asyncio.run(run_scenario(scenario, options))
    except ScenarioFailed as exc:
        print(f"FAILED: {exc}")
        print(f"logs and store kept in {work}")
        return 1
    except BaseException:
        if work.exists() and any(work.iterdir()):
            print(f"logs kept in {work}", file=sys.stderr)
        elif args.work is None:
            work.rmdir()  # refused before anything was written
        raise
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    print("passed")
    return 0
