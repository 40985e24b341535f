"""Several bulk workers (`[ingest] bulk_workers`) on the real mosquitto: they share the bulk
subscription, each message is stored once, and lowering their number strands nothing at the
broker (mosquitto keeps queuing a shared subscription's share for an offline session)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway import config as gateway_config
from gateway.mqtt import bulk_client_id
from protocol import codec
from protocol.messages import Position
from tests.gateway_helpers import GatewayProcess, stored_seqs, wait_until, with_workers
from tests.mqtt_helpers import Broker, connected

pytestmark = pytest.mark.broker

UNIT = "KEN-M01"


def publish(broker: Broker, seqs: range) -> None:
    """Positions `seqs`, each acknowledged by the broker (PUBACK) before this returns."""
    t0 = int(time.time() * 1000) - 60_000
    with connected(
        broker, UNIT, broker.deployment.unit_password(UNIT), client_id=UNIT, max_inflight=100
    ) as unit:
        infos = []
        for seq in seqs:
            position = Position(unit=UNIT, seq=seq, t_ms=t0 + seq, lat=34.26, lon=-6.58, fix=3)
            infos.append(unit.client.publish(codec.topic_of(position), codec.encode(position), 1))
        for info in infos:
            info.wait_for_publish(timeout=20)


def lane_received(gateway: GatewayProcess) -> dict[str, float]:
    lanes = {}
    for line in httpx.get(f"{gateway.url}/metrics").text.splitlines():
        if line.startswith("balise_lane_messages_received_total{"):
            lanes[line.split('"')[1]] = float(line.split()[-1])
    return lanes


def both_workers_up(gateway: GatewayProcess) -> None:
    """The second worker subscribed too (the gateway's start waits for the first alone)."""
    wait_until(lambda: "bulk1 lane connected to" in gateway.log(), what="the second worker")


def session_present(broker: Broker, client_id: str) -> bool:
    """Whether the broker holds a persistent session for `client_id` (then ends it)."""
    user, password = broker.deployment.gateway_user()
    answer: dict[str, Any] = {}
    answered = threading.Event()

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        answer["present"] = flags.session_present
        answered.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.username_pw_set(user, password)
    client.tls_set(ca_certs=str(broker.ca_cert))
    client.on_connect = on_connect
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK"
        return bool(answer["present"])
    finally:
        client.disconnect()
        client.loop_stop()


def test_two_workers_share_the_positions_and_each_is_stored_once(
    broker: Broker, tmp_path: Path
) -> None:
    db = tmp_path / "gateway.sqlite"
    gateway = GatewayProcess(broker, db, config=with_workers(broker, 2))
    try:
        both_workers_up(gateway)
        assert "$share/balise-gateway/balise/v1/+/pos" in gateway.log()
        publish(broker, range(1, 401))
        wait_until(lambda: len(stored_seqs(db)) == 400, what="400 stored")
        assert stored_seqs(db) == list(range(1, 401))
        lanes = lane_received(gateway)
        assert lanes["bulk"] > 0 and lanes["bulk1"] > 0, lanes  # each worker took a share
        assert lanes["bulk"] + lanes["bulk1"] == 400, lanes  # and no message went to both
        assert gateway.stop() == 0
    finally:
        gateway.kill()


def test_fewer_workers_take_over_what_the_broker_queued_for_the_others(
    broker: Broker, tmp_path: Path
) -> None:
    db = tmp_path / "gateway.sqlite"
    two = GatewayProcess(broker, db, config=with_workers(broker, 2))
    both_workers_up(two)
    assert two.stop() == 0  # both sessions now exist at the broker, offline
    publish(broker, range(1, 201))  # queued: about half for each session
    one = GatewayProcess(broker, db, config=with_workers(broker, 1))
    try:
        wait_until(lambda: len(stored_seqs(db)) == 200, what="all 200 stored")
        assert stored_seqs(db) == list(range(1, 201))
        retired = bulk_client_id(gateway_config.load(with_workers(broker, 1)).client_id, 1)
        assert f"session {retired} (bulk_workers is 1) held" in one.log()
        assert one.stop() == 0
        # The second session has ended: nothing published from now on is queued for it.
        publish(broker, range(201, 301))
        one = GatewayProcess(broker, db, config=with_workers(broker, 1))
        wait_until(lambda: len(stored_seqs(db)) == 300, what="all 300 stored")
        assert stored_seqs(db) == list(range(1, 301))
        assert "held" not in one.log()  # nothing left to take over
        assert one.stop() == 0
        assert not session_present(broker, retired)
    finally:
        one.kill()
