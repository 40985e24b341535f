"""Two gateways of one `shared_group` on the real mosquitto (MQTT 5): their bulk lanes share the
positions, and every status and SOS reaches both, even while one of them is down."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from protocol import codec
from protocol.messages import Position, Sos, StatusChange
from tests.gateway_helpers import GatewayProcess, config_with, stored_seqs, wait_until
from tests.mqtt_helpers import Broker, connected

pytestmark = pytest.mark.broker

UNIT = "KEN-M01"


def seqs(db: Path, kind: str = "pos") -> set[int]:
    return set(stored_seqs(db, UNIT, kind))


def message(seq: int, t_ms: int) -> Position | StatusChange | Sos:
    """Positions; every 10th a status, every 25th an SOS."""
    if seq % 25 == 0:
        return Sos(unit=UNIT, seq=seq, t_ms=t_ms, action="raise", alarm_id=seq)
    if seq % 10 == 0:
        return StatusChange(unit=UNIT, seq=seq, t_ms=t_ms, status=2 + seq % 3)
    return Position(unit=UNIT, seq=seq, t_ms=t_ms, lat=34.26, lon=-6.58, fix=3)


def alarms(db: Path) -> set[int]:
    return seqs(db, "status") | seqs(db, "sos")


def group_config(broker: Broker, name: str, adopt: tuple[str, ...] = ()) -> Path:
    """gateway.toml for gateway `name` of the group "room" (client id balise-gateway-<name>)."""
    client_id = f"balise-gateway-{name}"
    return config_with(
        broker, f"{name}-{len(adopt)}", shared_group="room", client_id=client_id, adopt=list(adopt)
    )


def publish(broker: Broker, first: int, last: int, t0: int) -> None:
    with connected(broker, UNIT, broker.deployment.unit_password(UNIT), client_id=UNIT) as unit:
        infos = []
        for seq in range(first, last + 1):
            m = message(seq, t0 + seq)
            infos.append(unit.client.publish(codec.topic_of(m), codec.encode(m), qos=1))
        for info in infos:
            info.wait_for_publish(timeout=20)


def test_the_group_shares_positions_and_every_gateway_takes_every_alarm(
    broker: Broker, tmp_path: Path
) -> None:
    configs = [group_config(broker, name) for name in ("a", "b")]
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


def test_a_gateway_adopts_what_the_broker_holds_for_a_retired_one(
    broker: Broker, tmp_path: Path
) -> None:
    db = tmp_path / "a.sqlite"
    a = GatewayProcess(broker, db, config=group_config(broker, "a"))
    b = GatewayProcess(broker, tmp_path / "b.sqlite", config=group_config(broker, "b"))
    t0 = int(time.time() * 1000)
    try:
        assert b.stop() == 0  # retired: its sessions stay at the broker, in the group
        assert a.stop() == 0
        publish(broker, 1, 200, t0)  # half of the positions queued for b, every alarm for both
        a = GatewayProcess(broker, db, config=group_config(broker, "a", ("balise-gateway-b",)))
        wait_until(lambda: set(stored_seqs(db)) == set(range(1, 201)), what="all 200 stored by a")
        for session in ("balise-gateway-b", "balise-gateway-b-alarm"):
            assert f"session {session} (adopted from balise-gateway-b) held" in a.log()
        # b's sessions have ended: from now on the group is a alone.
        publish(broker, 201, 300, t0)
        wait_until(lambda: set(stored_seqs(db)) == set(range(1, 301)), what="all 300 stored by a")
        assert a.stop() == 0
    finally:
        a.kill()
        b.kill()
