"""The dispatcher console in a real Chromium (Debian's, driven by Playwright), against a real
gateway process fed by units on the real mosquitto.

Screenshots of the main views are taken in every run; they replace docs/img/console-*.png (the
README shows one) only when BALISE_SCREENSHOTS=docs/img is set, so a test run leaves the
checkout clean. Elsewhere they go to the pytest temporary directory.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from protocol import codec, status, topics
from protocol.messages import Health, Online, Position, Sos, StatusChange
from tests.gateway_helpers import Api, GatewayProcess, add_user, wait_until
from tests.mqtt_helpers import Broker, Session, connected
from tests.screenshots import screenshots_dir

pytestmark = [pytest.mark.broker, pytest.mark.browser]

MOTO, CAR = "KEN-M01", "KEN-C01"
SCREENSHOTS = screenshots_dir()
SHOWN_WITHIN_MS = 5000  # generous: the figure itself is measured in bench/console.py


def now_ms() -> int:
    return int(time.time() * 1000)


def chromium() -> str:
    program = shutil.which("chromium") or shutil.which("chromium-browser")
    if program is None:
        pytest.fail("Debian's chromium is not installed: run scripts/system-deps.sh")
    return program


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), headless=True)
        yield launched
        launched.close()


@dataclass
class Fleet:
    """Units publishing as themselves (their own MQTT users) on the real broker."""

    sessions: dict[str, Session]
    seqs: dict[str, int] = field(default_factory=lambda: {MOTO: 1000, CAR: 1000})

    def send(self, unit: str, cls: Any, **values: Any) -> Any:
        self.seqs[unit] += 1
        message = cls(unit=unit, seq=self.seqs[unit], t_ms=now_ms(), **values)
        self.sessions[unit].publish(topics.topic(unit, message.KIND), codec.encode(message))
        return message

    def commands(self, unit: str, name: str) -> list[Any]:
        received = list(self.sessions[unit].received)
        decoded = [codec.decode(topic, payload) for topic, payload in received]
        return [c for c in decoded if name == c.COMMAND]


@dataclass
class Room:
    broker: Broker
    db: Path
    gw: GatewayProcess
    fleet: Fleet
    page: Page

    def restart_gateway(self) -> None:
        self.gw = GatewayProcess(self.broker, self.db, self.gw.http_port)


@pytest.fixture
def room(broker: Broker, browser: Browser, tmp_path: Path) -> Iterator[Room]:
    config = broker.deployment.directory / "gateway.toml"
    text = config.read_text().replace(
        "[broker]", "[ingest]\nheartbeat_s = 2.0\ngrace_s = 1.0\n\n[broker]"
    )
    config.write_text(text + f'\n[fleet]\n"{MOTO}" = "motorcycle"\n"{CAR}" = "car"\n')
    add_user(config, "amina", "dispatcher")
    db = tmp_path / "gateway.sqlite"
    sessions = {}
    with (
        connected(
            broker,
            MOTO,
            broker.deployment.unit_password(MOTO),
            client_id=MOTO,
            subscribe=[topics.cmd_topic(MOTO)],
        ) as moto,
        connected(
            broker,
            CAR,
            broker.deployment.unit_password(CAR),
            client_id=CAR,
            subscribe=[topics.cmd_topic(CAR)],
        ) as car,
    ):
        sessions = {MOTO: moto, CAR: car}
        gw = GatewayProcess(broker, db)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        room = Room(broker, db, gw, Fleet(sessions), page)
        try:
            yield room
        finally:
            page.close()
            room.gw.kill()  # the one running now: a test may have restarted it


def bring_up(room: Room) -> None:
    """Both units online, reporting and available; a dispatcher logged in."""
    for unit, (lat, lon) in ((MOTO, (34.2620, -6.5790)), (CAR, (34.2580, -6.5850))):
        room.fleet.send(unit, Online, online=True)
        room.fleet.send(unit, StatusChange, status=status.AVAILABLE)
        room.fleet.send(unit, Position, lat=lat, lon=lon, fix=3, speed_mps=6.0, heading_deg=45.0)
        room.fleet.send(unit, Health, outbox_depth=0, supply_v=12.6)
    page = room.page
    page.goto(room.gw.url)
    page.fill("#login-user", "amina")
    page.fill("#login-password", "correct horse battery")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#connection")).to_have_text("live", timeout=SHOWN_WITHIN_MS)


def row(page: Page, unit: str) -> Any:
    return page.locator(f'#board tr[data-unit="{unit}"]')


def test_login_then_units_on_board_and_map_and_a_status_change_shows(room: Room) -> None:
    page = room.page
    page.goto(room.gw.url)
    page.fill("#login-user", "amina")
    page.fill("#login-password", "wrong password")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("wrong user name or password")
    bring_up(room)
    expect(row(page, MOTO)).to_contain_text("available")
    expect(row(page, CAR)).to_contain_text("12.6 V")
    expect(page.locator('.mk.t-motorcycle[data-unit="KEN-M01"]')).to_be_visible()
    expect(page.locator('.mk.t-car[data-unit="KEN-C01"]')).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "console-board.png"))

    room.fleet.send(MOTO, StatusChange, status=status.ON_SCENE)
    expect(row(page, MOTO)).to_contain_text("on scene", timeout=SHOWN_WITHIN_MS)
    row(page, CAR).click()  # board and map select together
    expect(page.locator("#details")).to_contain_text("KEN-C01")
    expect(page.locator('.mk.selected[data-unit="KEN-C01"]')).to_be_visible()


def test_an_sos_shows_until_acknowledged_and_the_ack_reaches_the_unit(room: Room) -> None:
    bring_up(room)
    page = room.page
    seq = room.fleet.seqs[MOTO] + 1
    room.fleet.send(MOTO, Sos, action="raise", alarm_id=seq, lat=34.2625, lon=-6.5785)
    banner = page.locator(f'.alarm[data-unit="{MOTO}"]')
    expect(banner).to_contain_text("SOS KEN-M01", timeout=SHOWN_WITHIN_MS)
    expect(page.locator("body")).to_have_attribute("data-sos-sounding", "yes", timeout=3000)
    page.screenshot(path=str(SCREENSHOTS / "console-sos.png"))
    banner.locator("button").click()
    expect(banner).to_contain_text("acknowledged by amina", timeout=SHOWN_WITHIN_MS)
    expect(page.locator("body")).to_have_attribute("data-sos-sounding", "no", timeout=3000)
    ack = wait_until(lambda: room.fleet.commands(MOTO, "sos_ack"), what="SosAck on cmd")[0]
    assert (ack.alarm_id, ack.by) == (seq, "amina")
    add_user(room.gw.config, "chief", "admin")
    admin = Api(room.gw.url)
    admin.login("chief")
    audit = admin.get("/api/audit").json()
    assert any(e["action"] == "sos_ack" and e["actor"] == "amina" for e in audit)


def test_a_silent_unit_turns_stale_and_a_fired_will_shows_offline(room: Room) -> None:
    bring_up(room)
    page = room.page
    room.fleet.send(CAR, Online, online=False)  # what the broker publishes for a lost unit
    expect(row(page, CAR)).to_contain_text("offline", timeout=SHOWN_WITHIN_MS)
    expect(page.locator('.mk.offline[data-unit="KEN-C01"]')).to_be_visible()
    # Heartbeat 2 s + grace 1 s in this deployment: the silent moto goes stale.
    expect(row(page, MOTO)).to_contain_text("stale", timeout=SHOWN_WITHIN_MS + 3000)
    expect(page.locator('.mk.stale[data-unit="KEN-M01"]')).to_be_visible()


def test_an_incident_ranks_units_and_an_accepted_assignment_shows_en_route(room: Room) -> None:
    bring_up(room)
    page = room.page
    page.click("#new-incident")
    page.fill("#incident-title", "Crash on Avenue Mohammed V")
    page.fill("#incident-lat", "34.2615")
    page.fill("#incident-lon", "-6.5795")
    page.click("#incident-form button[type=submit]")
    ranking = page.locator("#ranking tbody tr")
    expect(ranking).to_have_count(2, timeout=SHOWN_WITHIN_MS)
    expect(ranking.first).to_contain_text(MOTO)  # the nearer one first
    page.screenshot(path=str(SCREENSHOTS / "console-incident.png"))
    page.click(f'#ranking button[data-assign="{MOTO}"]')
    expect(row(page, MOTO)).to_contain_text("assignment pending", timeout=SHOWN_WITHIN_MS)
    command = wait_until(lambda: room.fleet.commands(MOTO, "assign"), what="the assignment")[0]
    room.fleet.send(MOTO, StatusChange, status=status.EN_ROUTE, incident=command.incident)
    expect(row(page, MOTO)).to_contain_text("en route", timeout=SHOWN_WITHIN_MS)
    expect(row(page, MOTO)).not_to_contain_text("pending")


def test_the_page_says_disconnected_when_the_gateway_dies_and_recovers_by_itself(
    room: Room,
) -> None:
    bring_up(room)
    page = room.page
    room.gw.kill()
    expect(page.locator("#connection")).to_contain_text("disconnected", timeout=SHOWN_WITHIN_MS)
    room.restart_gateway()
    expect(page.locator("#connection")).to_have_text("live", timeout=15000)
    room.fleet.send(MOTO, StatusChange, status=status.BUSY)
    expect(row(page, MOTO)).to_contain_text("busy", timeout=SHOWN_WITHIN_MS)


def test_a_laptop_screen_shows_the_map_the_board_and_the_alarms(room: Room) -> None:
    bring_up(room)
    page = room.page
    page.set_viewport_size({"width": 1366, "height": 768})
    seq = room.fleet.seqs[CAR] + 1
    room.fleet.send(CAR, Sos, action="raise", alarm_id=seq, lat=34.2580, lon=-6.5850)
    expect(page.locator(f'.alarm[data-unit="{CAR}"] button')).to_be_visible(timeout=SHOWN_WITHIN_MS)
    for selector in ("#map", "#board"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["width"] > 300, f"{selector} too narrow: {box}"
        assert box["x"] + box["width"] <= 1366 + 1, f"{selector} overflows the screen: {box}"
    expect(page.locator("#connection")).to_be_in_viewport()
    page.screenshot(path=str(SCREENSHOTS / "console-laptop.png"))


def test_several_sos_all_show_and_sound_until_each_is_acknowledged(room: Room) -> None:
    bring_up(room)
    page = room.page
    for unit, (lat, lon) in ((MOTO, (34.2625, -6.5785)), (CAR, (34.2580, -6.5850))):
        seq = room.fleet.seqs[unit] + 1
        room.fleet.send(unit, Sos, action="raise", alarm_id=seq, lat=lat, lon=lon)
    alarms = page.locator("#alarms .alarm")
    expect(alarms).to_have_count(2, timeout=SHOWN_WITHIN_MS)
    page.locator(f'.alarm[data-unit="{MOTO}"] button').click()
    expect(page.locator(f'.alarm[data-unit="{MOTO}"]')).to_contain_text("acknowledged by amina")
    # The other SOS is still unacknowledged: the tone keeps going.
    expect(page.locator(f'.alarm[data-unit="{CAR}"] button')).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-sos-sounding", "yes")
    page.locator(f'.alarm[data-unit="{CAR}"] button').click()
    expect(page.locator("body")).to_have_attribute("data-sos-sounding", "no", timeout=3000)


def test_clicking_a_unit_shows_its_details_and_its_recent_track(room: Room) -> None:
    bring_up(room)
    page = room.page
    room.fleet.send(
        MOTO, Position, lat=34.2640, lon=-6.5770, fix=3, speed_mps=7.0, heading_deg=45.0
    )
    page.locator(f'.mk[data-unit="{MOTO}"]').click()
    details = page.locator("#details")
    expect(details).to_contain_text("34.26400, -6.57700", timeout=SHOWN_WITHIN_MS)
    expect(details).to_contain_text("25 km/h")
    expect(page.locator("path.track")).to_have_count(1, timeout=SHOWN_WITHIN_MS)
    expect(row(page, MOTO)).to_have_class(re.compile(r"\bselected\b"))


def test_a_moving_marker_glides_along_its_predicted_position_between_reports(room: Room) -> None:
    bring_up(room)
    page = room.page
    # Eastbound at 25 m/s, then silent: only the prediction can move the marker.
    room.fleet.send(
        MOTO, Position, lat=34.2600, lon=-6.5800, fix=3, speed_mps=25.0, heading_deg=90.0
    )
    speed_kmh = row(page, MOTO).locator("td").nth(4)
    expect(speed_kmh).to_have_text("90", timeout=SHOWN_WITHIN_MS)  # the report is on the page
    marker = page.locator(f'.mk[data-unit="{MOTO}"]')
    expect(page.locator("#details")).to_be_hidden()  # nothing selected: the map does not pan
    first = wait_until(lambda: marker.bounding_box(), what="the marker drawn")

    def moved_east() -> bool:
        box = marker.bounding_box()
        return box is not None and box["x"] - first["x"] >= 3 and abs(box["y"] - first["y"]) < 2

    wait_until(moved_east, timeout=10, what="the marker gliding east between reports")


def test_a_braking_marker_glides_to_its_stop_and_stays(room: Room) -> None:
    bring_up(room)
    page = room.page
    # Eastbound at 25 m/s braking at 2.1 m/s^2: the shared predictor stops it after 11.9 s,
    # 149 m on; a constant-velocity marker would go on for 30 s.
    room.fleet.send(
        MOTO,
        Position,
        lat=34.2600,
        lon=-6.5800,
        fix=3,
        speed_mps=25.0,
        heading_deg=90.0,
        accel_mps2=-2.1,
    )
    speed_kmh = row(page, MOTO).locator("td").nth(4)
    expect(speed_kmh).to_have_text("90", timeout=SHOWN_WITHIN_MS)
    marker = page.locator(f'.mk[data-unit="{MOTO}"]')
    expect(page.locator("#details")).to_be_hidden()  # nothing selected: the map does not pan
    first = wait_until(lambda: marker.bounding_box(), what="the marker drawn")
    time.sleep(13)  # past the stop
    stopped = marker.bounding_box()
    assert stopped is not None and stopped["x"] - first["x"] >= 3, (first, stopped)  # it glided
    time.sleep(3)
    later = marker.bounding_box()
    assert later is not None and abs(later["x"] - stopped["x"]) < 0.5, (stopped, later)
