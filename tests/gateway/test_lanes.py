"""The gateway's two MQTT sessions on the real mosquitto, with real database files: an alarm
overtakes a backlog of positions, its acknowledgement still waits for the commit, and a
session left by a one-session gateway is moved to the lanes."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from websockets.sync.client import connect as ws_connect

from protocol import codec, topics
from protocol.messages import Position, Sos, StatusChange
from tests.gateway_helpers import GatewayProcess, create_token, gateway, stored_seqs, wait_until
from tests.mqtt_helpers import Broker, Session, connected

pytestmark = pytest.mark.broker

UNIT = "KEN-M01"
BACKLOG = 20_000  # positions: several seconds of draining, at any speed this machine has
WAIT_S = 60.0


def metric(gw: GatewayProcess, name: str) -> float:
    import httpx

    for line in httpx.get(f"{gw.url}/metrics").text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def publish_all(unit: Session, messages: list[Any]) -> None:
    """Publish at QoS 1 without waiting for each PUBACK, then wait for the last."""
    infos = [unit.client.publish(codec.topic_of(m), codec.encode(m), qos=1) for m in messages]
    infos[-1].wait_for_publish(timeout=WAIT_S)
    assert all(info.is_published() for info in infos)


def acked_seqs(unit: Session) -> set[int]:
    seqs = set()
    for topic, payload in list(unit.received):
        command = codec.decode(topic, payload)
        if command.COMMAND == "ack":
            seqs |= {s for first, last in command.ranges for s in range(first, last + 1)}
    return seqs


@pytest.mark.slow
def test_an_sos_behind_a_backlog_of_positions_reaches_the_feed_before_the_backlog_is_drained(
    broker: Broker, tmp_path: Path
) -> None:
    db = tmp_path / "gateway.sqlite"
    token = create_token(broker.deployment.directory / "gateway.toml", "console", "viewer")
    assert GatewayProcess(broker, db).stop() == 0  # both of its sessions now exist, offline
    t0 = int(time.time() * 1000) - 3_600_000
    positions = [
        Position(unit=UNIT, seq=seq, t_ms=t0 + seq, lat=34.26, lon=-6.58, fix=3)
        for seq in range(1, BACKLOG + 1)
    ]
    sos = Sos(unit=UNIT, seq=BACKLOG + 1, t_ms=int(time.time() * 1000), action="raise", alarm_id=77)
    password = broker.deployment.unit_password(UNIT)
    with connected(broker, UNIT, password, client_id=UNIT, max_inflight=1000) as unit:
        # One publisher, in this order: on one session the broker would deliver the SOS last.
        publish_all(unit, [*positions, sos])
    with gateway(broker, db) as gw:
        url = gw.url.replace("http", "ws") + "/api/live"
        headers = {"Authorization": f"Bearer {token}"}
        with ws_connect(url, additional_headers=headers, max_size=None) as feed:
            seen_in = None
            while seen_in is None:
                frame = json.loads(feed.recv(timeout=WAIT_S))
                for view in frame.get("units", []):
                    if view["id"] == UNIT and (view["sos"] or {}).get("alarm_id") == 77:
                        seen_in = frame["type"]
            stored_when_seen = metric(gw, "balise_records_stored_total")
        alarms = gw_alarms(gw, token)
        assert [(a["unit"], a["alarm_id"]) for a in alarms] == [(UNIT, 77)]
        assert seen_in in ("snapshot", "alarm"), seen_in  # never waiting for a delta
        assert stored_when_seen < BACKLOG, "the SOS waited for the backlog"
        wait_until(
            lambda: len(stored_seqs(db)) == BACKLOG + 1, timeout=WAIT_S, what="the backlog stored"
        )
    assert stored_seqs(db) == list(range(1, BACKLOG + 2))


def gw_alarms(gw: GatewayProcess, token: str) -> list[dict[str, Any]]:
    import httpx

    response = httpx.get(f"{gw.url}/api/alarms", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    alarms: list[dict[str, Any]] = response.json()
    return alarms


def test_a_status_is_acknowledged_only_after_its_commit(broker: Broker, tmp_path: Path) -> None:
    db = tmp_path / "gateway.sqlite"
    password = broker.deployment.unit_password(UNIT)
    cmd = [topics.cmd_topic(UNIT)]
    with (
        gateway(broker, db),
        connected(broker, UNIT, password, client_id=UNIT, subscribe=cmd) as unit,
    ):
        unit.publish(topics.topic(UNIT, "status"), codec.encode(status(1)))
        wait_until(lambda: acked_seqs(unit) == {1}, what="the first ack")
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the gateway cannot commit now
        try:
            unit.publish(topics.topic(UNIT, "status"), codec.encode(status(2)))
            time.sleep(1.5)  # the alarm lane has it and waits for the lock
            assert acked_seqs(unit) == {1}, "acknowledged before it was stored"
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        wait_until(lambda: acked_seqs(unit) == {1, 2}, what="the ack after the commit")
        assert stored_seqs(db, kind="status") == [1, 2]


def status(seq: int, code: int = 3) -> StatusChange:
    return StatusChange(unit=UNIT, seq=seq, t_ms=int(time.time() * 1000), status=code)


def test_the_session_of_a_one_session_gateway_is_moved_to_the_lanes(
    broker: Broker, tmp_path: Path
) -> None:
    """An older gateway left `balise-gateway` subscribed to every uplink topic; the bulk lane
    drops that subscription, or every status would come twice (once on each lane)."""
    username, password = broker.deployment.gateway_user()
    old = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="balise-gateway",
        protocol=mqtt.MQTTv311,
        clean_session=False,
    )
    old.username_pw_set(username, password)
    old.tls_set(ca_certs=str(broker.ca_cert))
    suback = threading.Event()
    old.on_subscribe = lambda *_args: suback.set()
    old.connect(broker.host, broker.port)
    old.loop_start()
    old.subscribe(topics.UPLINK_SUBSCRIPTION, qos=1)
    assert suback.wait(WAIT_S), "no SUBACK for the old gateway's subscription"
    old.disconnect()
    old.loop_stop()
    db = tmp_path / "gateway.sqlite"
    unit_password = broker.deployment.unit_password(UNIT)
    with gateway(broker, db) as gw, connected(broker, UNIT, unit_password, client_id=UNIT) as unit:
        for seq in (1, 2, 3):
            unit.publish(topics.topic(UNIT, "status"), codec.encode(status(seq)))
        wait_until(lambda: stored_seqs(db) == [1, 2, 3], what="the statuses stored")
        time.sleep(1.0)  # a second copy, if the old subscription were left, arrives meanwhile
        assert metric(gw, "balise_messages_received_total") == 3
        assert metric(gw, "balise_records_duplicate_total") == 0
