"""`balise gateway` as a process against the real mosquitto and a real database file."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import pytest

from protocol import codec, topics
from protocol.messages import Position, Sos, StatusChange
from tests.gateway_helpers import (
    GatewayProcess,
    balise,
    gateway,
    stored_seqs,
    wait_until,
    with_workers,
)
from tests.mqtt_helpers import Broker, Deployment, Session, connected

pytestmark = pytest.mark.broker

UNIT = "KEN-M01"
WAIT_S = 20.0


def test_a_status_is_acknowledged_on_the_units_cmd_once_stored(
    broker: Broker, tmp_path: Path
) -> None:
    db = tmp_path / "gateway.sqlite"
    password = broker.deployment.unit_password(UNIT)
    with (
        gateway(broker, db),
        connected(
            broker, UNIT, password, client_id=UNIT, subscribe=[topics.cmd_topic(UNIT)]
        ) as unit,
    ):
        change = StatusChange(unit=UNIT, seq=7, t_ms=int(time.time() * 1000), status=3)
        unit.publish(topics.topic(UNIT, "status"), codec.encode(change))
        wait_until(lambda: unit.received, what="the acknowledgement")
        topic, payload = unit.received[0]
        ack = codec.decode(topic, payload)
        assert ack.ranges == [(7, 7)]
        assert stored_seqs(db) == [7]  # stored before it was acknowledged


def message(seq: int, t_ms: int) -> Position | StatusChange | Sos:
    """Mostly positions (the bulk lane); every 10th a status and every 25th an SOS (the alarm
    lane), so both sessions hold messages when the gateway dies."""
    if seq % 25 == 0:
        return Sos(unit=UNIT, seq=seq, t_ms=t_ms, action="raise", alarm_id=seq)
    if seq % 10 == 0:
        return StatusChange(unit=UNIT, seq=seq, t_ms=t_ms, status=2 + seq // 10 % 5)
    return Position(unit=UNIT, seq=seq, t_ms=t_ms, lat=34.26, lon=-6.58, fix=3)


def acked(unit: Session) -> set[int]:
    return {
        seq
        for topic, payload in list(unit.received)
        for first, last in codec.decode(topic, payload).ranges
        for seq in range(first, last + 1)
    }


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["one bulk worker", "two bulk workers"])
def test_killing_the_gateway_while_units_publish_loses_and_doubles_nothing(
    broker: Broker, tmp_path: Path, workers: int
) -> None:
    db = tmp_path / "gateway.sqlite"
    count = 600
    password = broker.deployment.unit_password(UNIT)
    config = broker.deployment.directory / "gateway.toml"  # as provisioned: one worker
    config = with_workers(broker, workers) if workers > 1 else config
    gateways: list[GatewayProcess] = [GatewayProcess(broker, db, config=config)]
    t0 = int(time.time() * 1000)
    alarms = [seq for seq in range(1, count + 1) if message(seq, 0).KIND != "pos"]

    def publish(unit: Session, seqs: range) -> None:
        infos = []
        for seq in seqs:
            m = message(seq, t0 + seq)
            infos.append(unit.client.publish(codec.topic_of(m), codec.encode(m), qos=1))
        for info in infos:
            info.wait_for_publish(timeout=WAIT_S)

    try:
        cmd = [topics.cmd_topic(UNIT)]
        with connected(broker, UNIT, password, client_id=UNIT, subscribe=cmd) as unit:
            publish(unit, range(1, 201))
            wait_until(lambda: len(stored_seqs(db)) == 200, what="the first 200 stored")
            # Hold the database's write lock: the gateway now receives messages
            # but cannot commit them, and dies in exactly that window.
            blocker = sqlite3.connect(db, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            publish(unit, range(201, 401))
            time.sleep(1.0)  # let them reach the gateway, which waits on the lock
            gateways[0].kill()
            blocker.execute("ROLLBACK")
            blocker.close()
            publish(unit, range(401, 501))  # while no gateway runs: queued by the broker
            gateways.append(GatewayProcess(broker, db, config=config))
            publish(unit, range(501, count + 1))
            wait_until(lambda: len(stored_seqs(db)) == count, what=f"{count} stored messages")
            wait_until(lambda: acked(unit) >= set(alarms), what="every status and SOS acked")
        # Every one, none twice, on either session; and each status and SOS acknowledged.
        assert stored_seqs(db) == list(range(1, count + 1))
        assert acked(unit) == set(alarms)
        assert gateways[1].stop() == 0
    finally:
        for process in gateways:
            process.kill()


def test_an_http_port_in_use_is_a_clear_error_before_any_broker_connection(
    deployment: Deployment, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = str(deployment.directory / "gateway.toml")
        db = str(tmp_path / "gateway.sqlite")
        result = balise("gateway", "--config", config, "--db", db, "--http", f"127.0.0.1:{port}")
    assert result.returncode == 2, result.stderr
    assert f"http: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "lane connected" not in result.stderr
