"""Two gateways share the load through MQTT 5 shared subscriptions on the real mosquitto: their
bulk lanes share the positions, their alarm lanes the statuses."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from protocol import codec
from protocol.messages import Position, StatusChange
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


def test_each_message_goes_to_one_gateway_of_the_group(broker: Broker, tmp_path: Path) -> None:
    base = (broker.deployment.directory / "gateway.toml").read_text()
    configs = []
    for name in ("a", "b"):
        config = broker.deployment.directory / f"gateway-{name}.toml"
        shared = f'[ingest]\nshared_group = "room"\nclient_id = "balise-gateway-{name}"\n\n[broker]'
        config.write_text(base.replace("[broker]", shared))
        configs.append(config)
    dbs = [tmp_path / "a.sqlite", tmp_path / "b.sqlite"]
    gateways = [GatewayProcess(broker, db, config=c) for db, c in zip(dbs, configs, strict=True)]
    try:
        t0 = int(time.time() * 1000)
        with connected(broker, UNIT, broker.deployment.unit_password(UNIT), client_id=UNIT) as unit:
            for seq in range(1, 201):
                message: Position | StatusChange = (
                    StatusChange(unit=UNIT, seq=seq, t_ms=t0 + seq, status=2 + seq % 3)
                    if seq % 10 == 0
                    else Position(unit=UNIT, seq=seq, t_ms=t0 + seq, lat=34.26, lon=-6.58, fix=3)
                )
                unit.client.publish(codec.topic_of(message), codec.encode(message), qos=1)
            wait_until(
                lambda: (
                    len(seqs(dbs[0]) | seqs(dbs[1])) == 180
                    and len(seqs(dbs[0], "status") | seqs(dbs[1], "status")) == 20
                ),
                what="all 200 stored",
            )
        for kind in ("pos", "status"):  # the bulk lanes share positions, the alarm lanes statuses
            a, b = seqs(dbs[0], kind), seqs(dbs[1], kind)
            assert a and b, f"both gateways took a share of {kind}"
            assert not a & b, f"no {kind} went to both"
    finally:
        for gateway in gateways:
            gateway.kill()
