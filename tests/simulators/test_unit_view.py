"""`balise sim unit`: the terminal view, driven by textual's pilot, against the real
mosquitto and a real gateway process; keys pressed as a tester would.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from firmware.core.signals import BLINK, FLASH, ON
from simulators.fleet import FleetOptions
from simulators.unit_panel import Panel
from simulators.unit_view import HandUnit, UnitView, running_unit
from tests.conftest import free_port
from tests.gateway_helpers import Api, GatewayProcess, add_user, balise, gateway, wait_until
from tests.mqtt_helpers import Broker, Deployment
from tests.screenshots import screenshots_dir

UNIT = "KEN-M01"
SIZE = (120, 24)
SCREENSHOTS = screenshots_dir()


@pytest.fixture
def room(broker: Broker, tmp_path: Path) -> Iterator[tuple[GatewayProcess, Api]]:
    """The gateway on the broker, and a dispatcher (amina) logged in to its API."""
    with gateway(broker, tmp_path / "gateway.sqlite") as gw:
        add_user(gw.config, "amina", "dispatcher")
        api = Api(gw.url)
        assert api.login("amina").status_code == 200
        try:
            yield gw, api
        finally:
            api.close()


def options(broker: Broker) -> FleetOptions:
    deployment = broker.deployment.directory
    return FleetOptions(deployment, 1, unit_ids=[UNIT], rider=False, connect_spread_s=0)


async def until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Wait for `check()` (run off the loop: it may call the API) while the app runs."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


Script = Callable[[HandUnit, UnitView, Pilot[None]], Awaitable[None]]


def drive(broker: Broker, script: Script, gps: str = "park") -> None:
    """Run the unit (parked by default) and its view headless on one loop, connected; `script`."""

    async def run() -> None:
        async with running_unit(options(broker), gps) as unit:
            app = UnitView(unit)
            async with app.run_test(size=SIZE) as pilot:
                await until(lambda: unit.connected, "the unit connected")
                await script(unit, app, pilot)

    asyncio.run(run())


def shown(app: UnitView, pick: Callable[[Panel], Any]) -> list[Any]:
    """What the view showed of something, each change once, oldest first."""
    values: list[Any] = []
    for panel in app.history:
        value = pick(panel)
        if not values or values[-1] != value:
            values.append(value)
    return values


def screen_text(app: UnitView) -> str:
    return f"{app.buttons.content}\n{app.state.content}"


@pytest.mark.broker
def test_a_status_key_reaches_the_api_and_its_led_goes_from_blinking_to_steady(
    broker: Broker, room: tuple[GatewayProcess, Api]
) -> None:
    _, api = room

    async def script(unit: HandUnit, app: UnitView, pilot: Pilot[None]) -> None:
        await until(lambda: api.units().get(UNIT, {}).get("online"), "the unit online")
        await pilot.press("1")
        await until(lambda: api.units()[UNIT]["status"] == "available", "available on the API")
        await until(lambda: app.shown.buttons[0].pattern == ON, "a steady LED")
        patterns = shown(app, lambda panel: panel.buttons[0].pattern)
        assert patterns[-2:] == [BLINK, ON], patterns
        meanings = shown(app, lambda panel: panel.buttons[0].meaning)
        assert meanings[-2:] == ["sent, not yet received", "received"]
        assert "available (received)" in screen_text(app)
        assert any("status available received" in line for line in unit.recorder.log)

    drive(broker, script)


@pytest.mark.broker
def test_an_sos_long_press_shows_sent_received_then_acknowledged_by_the_dispatcher(
    broker: Broker, room: tuple[GatewayProcess, Api]
) -> None:
    _, api = room

    async def script(unit: HandUnit, app: UnitView, pilot: Pilot[None]) -> None:
        await until(lambda: unit.connected, "the unit connected")
        await pilot.press("s")
        await until(lambda: app.shown.holding.startswith("holding SOS"), "the hold shown")
        await pilot.press("c")  # while the SOS button is still held: no new press
        assert unit.recorder.log[-1].endswith("the SOS button is still held: wait for it")
        sos = await until(lambda: api.units()[UNIT]["sos"], "the SOS on the API")
        await until(lambda: app.shown.sos.pattern == BLINK, "the gateway's ack")
        assert shown(app, lambda panel: panel.sos.meaning)[-2:] == [
            "sent, on its way",
            "received, waiting for a dispatcher",
        ]
        assert shown(app, lambda panel: panel.sos.pattern)[-2:] == [FLASH, BLINK]
        acked = await asyncio.to_thread(api.post, f"/api/units/{UNIT}/sos/{sos['alarm_id']}/ack")
        assert acked.status_code == 200, acked.text
        await until(
            lambda: app.shown.sos.meaning == "acknowledged by amina", "the dispatcher's ack"
        )
        assert app.shown.sos.pattern == ON
        assert "acknowledged by amina" in screen_text(app)
        # The cancel: its own long press; the SOS goes off once the gateway has it.
        await until(lambda: not app.shown.holding, "the raising press released")
        await pilot.press("c")
        await until(lambda: app.shown.sos.meaning == "" and not unit.core.alarm, "off")
        assert "cancelling" in shown(app, lambda panel: panel.sos.meaning)
        await until(lambda: api.units()[UNIT]["sos"]["cancelled"], "the SOS cancelled on the API")

    drive(broker, script)


@pytest.mark.broker
def test_an_assignment_from_the_api_shows_up_and_sounds_the_buzzer(
    broker: Broker, room: tuple[GatewayProcess, Api]
) -> None:
    _, api = room

    async def script(unit: HandUnit, app: UnitView, pilot: Pilot[None]) -> None:
        await until(lambda: api.units().get(UNIT, {}).get("position"), "a position")
        await pilot.press("1")
        await until(lambda: app.shown.buttons[0].pattern == ON, "available received")
        here = unit.core.last_fix
        body = {"lat": here.lat, "lon": here.lon, "title": "Crash on the N1"}
        incident = (await asyncio.to_thread(api.post, "/api/incidents", body)).json()
        sent = await asyncio.to_thread(
            api.post, f"/api/incidents/{incident['id']}/assign", {"unit": UNIT}
        )
        assert sent.status_code == 202, sent.text
        await until(lambda: app.shown.assignment != "none", "the assignment shown")
        title = f"incident {incident['id']}: Crash on the N1"
        assert app.shown.assignment.startswith(title)
        assert "sounding: assignment" in shown(app, lambda panel: panel.buzzer)
        assert app.shown.buttons[1].pattern == FLASH
        await pilot.pause()  # the layout catches up with the longer text
        save_screenshot(app)  # docs/simulators.md shows it
        await pilot.press("2")  # en route: the rider accepts
        await until(lambda: api.units()[UNIT]["assignment"]["state"] == "accepted", "accepted")
        assert api.units()[UNIT]["status"] == "en_route"

    drive(broker, script)


@pytest.mark.broker
def test_the_tunnel_and_dead_zone_keys_take_the_fix_and_the_link_away_and_q_signs_off(
    broker: Broker, room: tuple[GatewayProcess, Api]
) -> None:
    _, api = room

    async def script(unit: HandUnit, app: UnitView, pilot: Pilot[None]) -> None:
        await until(lambda: api.units().get(UNIT, {}).get("online"), "the unit online")
        await pilot.press("t")
        await until(lambda: app.shown.gps.meaning == "no fix", "the fix lost in the tunnel")
        assert app.shown.gps.pattern == BLINK and app.shown.position.startswith("no fix")
        await pilot.press("t")
        await until(lambda: app.shown.gps.meaning == "fix", "the fix back")
        await pilot.press("d")
        await until(lambda: app.shown.link.meaning == "down: in a dead zone", "the link down")
        await until(lambda: not api.units()[UNIT]["online"], "the broker's will: offline")
        await pilot.press("d")
        await until(lambda: api.units()[UNIT]["online"], "online again", timeout=30)
        assert app.shown.link.meaning == "connected"
        log = "\n".join(unit.recorder.log)
        assert "entered a tunnel" in log and "entered a dead zone" in log
        await pilot.press("q")
        await until(lambda: app.return_code is not None, "the app to quit")

    drive(broker, script)
    wait_until(lambda: not api.units()[UNIT]["online"], what="signed off: offline")


CASABLANCA = (33.5731, -7.5898)  # far from the simulated unit's own streets in Kénitra


@pytest.mark.broker
def test_fixes_from_a_receiver_on_a_pty_replace_the_simulated_gps(
    broker: Broker, room: tuple[GatewayProcess, Api]
) -> None:
    _, api = room
    center = f"{CASABLANCA[0]},{CASABLANCA[1]}"
    receiver = subprocess.Popen(
        [sys.executable, "-m", "balise", "sim", "gps", "--pty", "--center", center],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )

    def near(lat: float, lon: float) -> bool:
        return abs(lat - CASABLANCA[0]) < 0.05 and abs(lon - CASABLANCA[1]) < 0.05

    async def script(unit: HandUnit, app: UnitView, pilot: Pilot[None]) -> None:
        await until(lambda: app.shown.gps.meaning == "fix", "a fix from the receiver")
        fix = unit.core.last_fix
        assert near(fix.lat, fix.lon), (fix.lat, fix.lon)
        await until(lambda: (api.units()[UNIT].get("position") or {}).get("lat"), "a position")
        position = api.units()[UNIT]["position"]
        assert near(position["lat"], position["lon"]), position
        assert app.state.border_title == f"unit · GPS {url}"
        await pilot.press("t")  # the tunnel key hides the receiver's fixes
        await until(lambda: app.shown.gps.meaning == "no fix", "no fix in the tunnel")

    try:
        assert receiver.stdout is not None
        url = f"serial://{receiver.stdout.readline().strip()}?baud=9600"
        drive(broker, script, gps=url)
    finally:
        receiver.terminate()
        receiver.wait(10)


def save_screenshot(app: UnitView) -> None:
    """sim-unit.svg from textual, and .png from it by rsvg-convert (librsvg2-bin)."""
    svg = SCREENSHOTS / "sim-unit.svg"
    app.save_screenshot(filename=svg.name, path=str(svg.parent))
    converter = shutil.which("rsvg-convert")
    if converter is None:
        pytest.fail("rsvg-convert is not installed: run scripts/system-deps.sh")
    png = svg.with_suffix(".png")
    subprocess.run([converter, "-o", str(png), str(svg)], check=True, timeout=60)


@pytest.mark.parametrize("unit", ["KEN-X99", "ken-m01"])
def test_a_unit_not_in_the_deployment_is_refused_naming_it(
    deployment: Deployment, unit: str
) -> None:
    result = balise("sim", "unit", "--deployment", str(deployment.directory), "--unit", unit)
    assert result.returncode == 2
    assert f"unit {unit}: not in the deployment" in result.stderr
    assert "its units: KEN-C01, KEN-M01" in result.stderr


def test_a_bad_or_unreachable_gps_is_refused_naming_it(deployment: Deployment) -> None:
    where = ["sim", "unit", "--deployment", str(deployment.directory), "--unit", UNIT]
    bad = balise(*where, "--gps", "nmea://ttyS0")
    assert bad.returncode == 2
    assert "GPS URL 'nmea://ttyS0': unknown scheme 'nmea'" in bad.stderr
    assert "or one of drive, park" in bad.stderr
    port = free_port()
    unreachable = balise(*where, "--gps", f"gpsd://127.0.0.1:{port}")
    assert unreachable.returncode == 2
    assert f"gpsd 127.0.0.1:{port} is not reachable" in unreachable.stderr
