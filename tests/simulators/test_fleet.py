"""The fleet simulator against the real mosquitto and a real gateway process."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from protocol import status
from simulators.fleet import Fleet, FleetOptions
from simulators.world import Zone
from tests.gateway_helpers import Api, add_user, create_token, gateway, wait_until
from tests.mqtt_helpers import Broker

pytestmark = pytest.mark.broker


@contextmanager
def fleet_running(options: FleetOptions) -> Iterator[Fleet]:
    """The fleet on its own asyncio loop in a thread, as `balise sim fleet` runs it."""
    loop = asyncio.new_event_loop()
    fleet = Fleet(options, loop)
    done = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        task = loop.create_task(fleet.run())
        fleet.task = task  # type: ignore[attr-defined]
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield fleet
    finally:
        loop.call_soon_threadsafe(fleet.task.cancel)  # type: ignore[attr-defined]
        assert done.wait(10), "the fleet did not stop"


def test_twenty_units_are_live_on_the_api_within_seconds_and_one_takes_an_assignment(
    big_broker: Broker, tmp_path: Path
) -> None:
    deployment = big_broker.deployment.directory
    options = FleetOptions(deployment, units=20, seed=1, on_scene_s=(1.0, 2.0), connect_spread_s=2)
    with gateway(big_broker, tmp_path / "gateway.sqlite") as gw, fleet_running(options) as fleet:
        api = Api(gw.url, token=create_token(gw.config, "test", "dispatcher"))
        wait_until(
            lambda: api.all_live(20), timeout=20, what="all 20 units online, placed and available"
        )
        assert fleet.connected() == 20
        incident = api.post("/api/incidents", {"lat": 34.2610, "lon": -6.5802, "title": "Test"})
        nearest = api.get(f"/api/incidents/{incident.json()['id']}/nearest", limit=1).json()[0]
        sent = api.post(f"/api/incidents/{incident.json()['id']}/assign", {"unit": nearest["unit"]})
        assert sent.status_code == 202
        accepted = wait_until(
            lambda: (u := api.units()[nearest["unit"]])["assignment"]["state"] == "accepted" and u,
            timeout=20,
            what="the simulated rider to accept",
        )
        assert accepted["status"] == "en_route"
        assert fleet.unit(nearest["unit"]).mission in ("to_incident", "on_scene", "patrol")


def test_a_unit_in_a_dead_zone_goes_offline_and_its_backlog_arrives_after(
    big_broker: Broker, tmp_path: Path
) -> None:
    deployment = big_broker.deployment.directory
    options = FleetOptions(deployment, units=1, seed=2, connect_spread_s=0)
    db = tmp_path / "gateway.sqlite"
    with gateway(big_broker, db) as gw, fleet_running(options) as fleet:
        add_user(gw.config, "amina", "viewer")
        api = Api(gw.url)
        api.login("amina")
        unit = fleet.units[0]
        wait_until(lambda: api.units()[unit.id]["online"], what="the unit online")
        # A dead zone around wherever the unit is now: its link drops with no goodbye.
        here = Zone(unit.vehicle.lat, unit.vehicle.lon, 5000, "dead zone")
        fleet.options.dead_zones = [here]
        wait_until(lambda: not api.units()[unit.id]["online"], what="the last will: offline")
        wait_until(lambda: not unit.connected, what="the unit to notice")
        # The rider changes status inside the zone: it waits in the outbox for the link.
        pressed_ms = int(time.time() * 1000)
        unit.fleet.loop.call_soon_threadsafe(unit.press, "busy")
        pending = unit.core  # the status is made on the button's release
        wait_until(
            lambda: getattr(pending.status_pending, "status", None) == status.BUSY,
            what="the busy status pending in the outbox",
        )
        assert unit.core.outbox.depth() >= 1
        left_ms = int(time.time() * 1000)
        fleet.options.dead_zones = []
        wait_until(lambda: api.units()[unit.id]["online"], timeout=30, what="back online")
        wait_until(lambda: unit.core.outbox.depth() == 0, timeout=30, what="the backlog sent")
        wait_until(
            lambda: api.units()[unit.id]["status"] == "busy", what="the status from the zone"
        )
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT seq, kind, t_ms, received_ms FROM messages").fetchall()
    seqs = [seq for seq, *_ in rows]
    assert len(seqs) == len(set(seqs)), "nothing stored twice"
    # Made inside the zone (after the press), received only once the unit had left it. The
    # unit's clock is GPS time, whole seconds from the receiver: up to 1 s behind the wall's.
    made_from_ms = pressed_ms - 1000
    late = [kind for seq, kind, t, received in rows if t >= made_from_ms and received >= left_ms]
    statuses = [(seq, t, received) for seq, kind, t, received in rows if kind == "status"]
    assert "status" in late, (
        f"the status pressed in the zone arrived after it: {left_ms} {statuses}"
    )
