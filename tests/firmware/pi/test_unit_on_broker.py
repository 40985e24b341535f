"""The Pi runtime with its real paho link against the real mosquitto.

The unit runs in-process with a fake board (buttons pressed by the test) and
fixes posted by the test; a subscriber with the gateway's credentials plays
the gateway: it sees what arrived and answers on the unit's cmd topic. A
LinkCutter between unit and broker makes the dead zones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from firmware.core.fix import MODE_3D, Fix
from firmware.drivers.gpio_fake import FakeBoard
from firmware.drivers.gps_fake import FakeGps
from firmware.drivers.mqtt_paho import BrokerSettings, PahoLink
from firmware.pi import config as unit_config
from protocol import codec, topics
from protocol.messages import Ack, SosAck
from tests.firmware.pi.unit_helpers import running_runtime, running_unit, uplink
from tests.mqtt_helpers import Broker, Session, connected
from tests.netfault import LinkCutter

pytestmark = pytest.mark.broker

UNIT = "KEN-M01"
WAIT_S = 10.0


def wait_until(condition: Callable[[], Any], timeout: float = WAIT_S, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")


class Gateway:
    """The test's stand-in for the gateway: decodes what arrives, answers on cmd."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cmd_id = 0

    def messages(self, unit: str = UNIT, kind: str | None = None) -> list[Any]:
        decoded = []
        for topic, payload in list(self.session.received):
            if topic.startswith(f"balise/v1/{unit}/"):
                message = codec.decode(topic, payload)
                if kind in (None, message.KIND):
                    decoded.append(message)
        return decoded

    def send(self, command: Any) -> None:
        self.cmd_id += 1
        command = command.replace(unit=UNIT, cmd_id=self.cmd_id, t_ms=int(time.time() * 1000))
        self.session.publish(topics.cmd_topic(UNIT), codec.encode(command))


@contextmanager
def gateway(broker: Broker) -> Iterator[Gateway]:
    user, password = broker.deployment.gateway_user()
    with connected(
        broker, user, password, client_id="test-gateway", subscribe=[topics.UPLINK_SUBSCRIPTION]
    ) as session:
        yield Gateway(session)


def a_fix(lat: float = 34.2610, lon: float = -6.5802) -> Fix:
    return Fix(
        time_ms=int(time.time() * 1000),
        mode=MODE_3D,
        lat=lat,
        lon=lon,
        speed_mps=0.0,
        heading_deg=0.0,
        hdop=0.9,
        sats=9,
    )


def click(board: FakeBoard, name: str, hold_s: float = 0.1) -> None:
    board.press(name)
    time.sleep(hold_s)
    board.release(name)


def test_a_status_press_reaches_the_gateway_and_its_ack_lights_the_led(
    broker: Broker, tmp_path: Path
) -> None:
    with gateway(broker) as gw, running_unit(broker, tmp_path / "state") as (runtime, board):
        wait_until(lambda: gw.messages(kind="online"), what="the unit online")
        runtime.post("fix", a_fix())
        click(board, "b2")
        change = wait_until(lambda: gw.messages(kind="status"), what="the status")[0]
        assert change.status == 3 and change.lat == 34.261
        assert board.leds["b2"] == "blink"  # the broker has it; the command room not yet
        gw.send(Ack(ranges=[(change.seq, change.seq)]))
        wait_until(lambda: board.leds["b2"] == "on", what="the LED steady")


def test_sos_raised_without_a_link_goes_first_and_repeats_until_a_person_acknowledges(
    broker: Broker, tmp_path: Path
) -> None:
    proxy = LinkCutter(broker.host, broker.port, cut=True)
    try:
        with (
            gateway(broker) as gw,
            running_unit(broker, tmp_path / "state", port=proxy.port, sos_repeat_s=1) as (
                runtime,
                board,
            ),
        ):
            runtime.post("fix", a_fix())
            click(board, "b1")
            click(board, "sos")
            time.sleep(1.5)
            assert gw.messages() == [], "nothing can have crossed a cut link"
            assert board.leds["sos"] == "flash"
            proxy.restore()
            raised = wait_until(lambda: gw.messages(kind="sos"), what="the SOS")[0]
            # The pending status follows the SOS; wait for it rather than race it.
            wait_until(lambda: gw.messages(kind="status"), what="the pending status")
            kinds = [message.KIND for message in gw.messages()]
            assert kinds[:2] == ["online", "sos"], kinds
            assert (
                raised.action == "raise"
                and raised.alarm_id == raised.seq
                and raised.lat is not None
            )
            wait_until(lambda: len(gw.messages(kind="sos")) >= 2, what="a repeat")
            gw.send(Ack(ranges=[(raised.seq, raised.seq)]))
            wait_until(lambda: board.leds["sos"] == "blink", what="SOS received by the gateway")
            count = len(gw.messages(kind="sos"))
            wait_until(
                lambda: len(gw.messages(kind="sos")) > count, what="repeats after the gateway's ack"
            )
            gw.send(SosAck(alarm_id=raised.seq, by="amina"))
            wait_until(lambda: board.leds["sos"] == "on", what="SOS acknowledged by a person")
            settled = len(gw.messages(kind="sos"))
            time.sleep(2.5)
            assert len(gw.messages(kind="sos")) <= settled + 1  # at most one was already on its way
            assert all(message.alarm_id == raised.seq for message in gw.messages(kind="sos"))
    finally:
        proxy.close()


def test_every_lost_link_leaves_a_fresh_last_will(broker: Broker, tmp_path: Path) -> None:
    proxy = LinkCutter(broker.host, broker.port)
    try:
        with (
            gateway(broker) as gw,
            running_unit(broker, tmp_path / "state", port=proxy.port) as (_, board),
        ):
            for round_ in (1, 2):
                wait_until(
                    lambda r=round_: len([m for m in gw.messages(kind="online") if m.online]) >= r
                )
                assert board.leds["link"] == "on"
                proxy.cut()
                wait_until(
                    lambda r=round_: (
                        len([m for m in gw.messages(kind="online") if not m.online]) >= r
                    ),
                    what="the last will",
                )
                wait_until(lambda: board.leds["link"] == "off", what="the link LED off")
                proxy.restore()
            wills = [m for m in gw.messages(kind="online") if not m.online]
            # Each will carries its own seq: the gateway must not drop the second as a duplicate.
            assert len({will.seq for will in wills}) == len(wills) == 2
    finally:
        proxy.close()


def test_stopping_the_unit_says_offline_although_a_clean_disconnect_drops_the_will(
    broker: Broker, tmp_path: Path
) -> None:
    with gateway(broker) as gw:
        with running_unit(broker, tmp_path / "state"):
            wait_until(lambda: gw.messages(kind="online"), what="online")
        wait_until(
            lambda: [m for m in gw.messages(kind="online") if not m.online], what="signed off"
        )


def test_the_link_survives_pubacks_racing_its_publishes(broker: Broker) -> None:
    """paho's network thread and the publishing thread take two locks; never in opposite orders."""
    config = unit_config.load(broker.deployment.directory / "units" / f"{UNIT}.toml")
    settings = BrokerSettings(
        host=config.broker.host,
        port=config.broker.port,
        username=config.broker.username,
        password=config.broker.password,
        ca_file=config.broker.ca_file,
        client_id=UNIT,
        cmd_topic=topics.cmd_topic(UNIT),
    )
    pubacks: list[int] = []
    up = threading.Event()

    def on_event(kind: str, value: object) -> None:
        if kind == "puback":
            pubacks.append(value)  # type: ignore[arg-type]
        elif kind == "up":
            up.set()

    link = PahoLink(settings, on_event)
    link.start(topics.topic(UNIT, "online"), b"{}")
    try:
        assert up.wait(WAIT_S)
        count = 5000
        for token in range(count):
            link.publish(topics.topic(UNIT, "health"), b"x" * 50, 1, False, token)
            if token % 7 == 0:
                link.publish(topics.topic(UNIT, "online"), b"{}", 1, False, None)
        wait_until(lambda: len(pubacks) == count, timeout=60, what=f"{count} PUBACKs")
        assert sorted(pubacks) == list(range(count))
    finally:
        link.close()


def test_stopping_the_unit_closes_its_gps_source(broker: Broker, tmp_path: Path) -> None:
    gps = FakeGps()
    gps.feed(a_fix())
    with uplink(broker) as seen, running_runtime(broker, tmp_path / "state", gps):
        wait_until(seen.positions, what="the fed fix, reported")
        assert not gps.closed
    assert gps.closed, "the serial port or gpsd socket must be released on stop"
