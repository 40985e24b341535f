"""`balise gateway` as a process against the real mosquitto and a real database file."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from protocol import codec, topics
from protocol.messages import Position, StatusChange
from tests.gateway_helpers import GatewayProcess, gateway, wait_until
from tests.mqtt_helpers import Broker, Session, connected

pytestmark = pytest.mark.broker

UNIT = "KEN-M01"
WAIT_S = 20.0


def stored_seqs(db: Path, unit: str = UNIT) -> list[int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT seq FROM messages WHERE unit = ? ORDER BY seq", (unit,))
        return [seq for (seq,) in rows]


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


@pytest.mark.slow
def test_killing_the_gateway_while_units_publish_loses_and_doubles_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    db = tmp_path / "gateway.sqlite"
    count = 600
    password = broker.deployment.unit_password(UNIT)
    gateways: list[GatewayProcess] = [GatewayProcess(broker, db)]
    t0 = int(time.time() * 1000)

    def publish(unit: Session, seqs: range) -> None:
        infos = []
        for seq in seqs:
            position = Position(unit=UNIT, seq=seq, t_ms=t0 + seq, lat=34.26, lon=-6.58, fix=3)
            infos.append(
                unit.client.publish(topics.topic(UNIT, "pos"), codec.encode(position), qos=1)
            )
        for info in infos:
            info.wait_for_publish(timeout=WAIT_S)

    try:
        with connected(broker, UNIT, password, client_id=UNIT) as unit:
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
            gateways.append(GatewayProcess(broker, db))
            publish(unit, range(501, count + 1))
            wait_until(lambda: len(stored_seqs(db)) == count, what=f"{count} stored positions")
        # Every one, none twice.
        assert stored_seqs(db) == list(range(1, count + 1))
        assert gateways[1].stop() == 0
    finally:
        for process in gateways:
            process.kill()
