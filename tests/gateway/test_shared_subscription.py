"""Two gateways of one `shared_group` on the real mosquitto (MQTT 5): their bulk lanes share the
positions, and every status and SOS reaches both, even while one of them is down."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from protocol import codec
from protocol.messages import Position, Sos, StatusChange
from tests.gateway_helpers import GatewayProcess, wait_until
from tests.mqtt_helpers import Broker, connected

pytestmark = pytest.mark.broker

UNIT = "KEN-M01"


def seqs(db: Path, kind: str = "pos") -> set[int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT seq FROM messages WHERE unit = ? AND kind = ?", (UNIT, kind)
        )
        return {seq for (seq,) in rows}


def message(seq: int, t_ms: int) -> Position | StatusChange | Sos:
    """Positions; every 10th a status, every 25th an SOS."""
    if seq % 25 == 0:
        return Sos(unit=UNIT, seq=seq, t_ms=t_ms, action="raise", alarm_id=seq)
    if seq % 10 == 0:
        return StatusChange(unit=UNIT, seq=seq, t_ms=t_ms, status=2 + seq % 3)
    return Position(unit=UNIT, seq=seq, t_ms=t_ms, lat=34.26, lon=-6.58, fix=3)


def alarms(db: Path) -> set[int]:
    return seqs(db, "status") | seqs(db, "sos")


def test_the_group_shares_positions_and_every_gateway_takes_every_alarm(
    broker: Broker, tmp_path: Path
) -> None:
    base = (broker.deployment.directory / "gateway.toml").read_text()
    configs = []
    for name in ("a", "b"):
        config = broker.deployment.directory / f"gateway-{name}.toml"
        shared = f'[ingest]\nshared_group = "room"\nclient_id = "balise-gateway-{name}"\n\n[broker]'
        config.write_text(base.replace("[broker]", shared))
        configs.append(config)
    dbs = [tmp_path / "a.sqlite", tmp_path / "b.sqlite"]
    gateways = [GatewayProcess(broker, db, config=c) for db, c in zip(dbs, configs, strict=True)]
    t0 = int(time.time() * 1000)
    every_alarm = {seq for seq in range(1, 401) if message(seq, 0).KIND != "pos"}
    first_positions = 200 - len({seq for seq in every_alarm if seq <= 200})
    try:
        with connected(broker, UNIT, broker.deployment.unit_password(UNIT), client_id=UNIT) as unit:

            def publish(first: int, last: int) -> None:
                for seq in range(first, last + 1):
                    m = message(seq, t0 + seq)
                    unit.client.publish(codec.topic_of(m), codec.encode(m), qos=1)

            publish(1, 200)
            wait_until(
                lambda: len(seqs(dbs[0]) | seqs(dbs[1])) == first_positions,
                what="the first positions stored",
            )
            a, b = seqs(dbs[0]), seqs(dbs[1])
            assert a and b, "both gateways took a share of the positions"
            assert not a & b, "no position went to both"
            # Gateway b stops: mosquitto still queues its share of the group for it, but every
            # status and SOS published meanwhile reaches gateway a, and the console on it.
            assert gateways[1].stop() == 0
            publish(201, 400)
            wait_until(lambda: alarms(dbs[0]) == every_alarm, what="every alarm stored by a")
            gateways[1] = GatewayProcess(broker, dbs[1], config=configs[1])
            wait_until(lambda: alarms(dbs[1]) == every_alarm, what="every alarm stored by b")
            positions = 400 - len(every_alarm)
            wait_until(
                lambda: seqs(dbs[0]) | seqs(dbs[1]) == set(range(1, 401)) - every_alarm,
                what=f"all {positions} positions stored",
            )
    finally:
        for gateway in gateways:
            gateway.kill()
