"""The bulk lane's worker process (gateway/bulk.py) on the real mosquitto: it ends with the
gateway however the gateway ends, its own death stops the gateway with an error that says so,
and it reconnects after the broker restarts."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from protocol import codec
from protocol.messages import Position
from tests.conftest import start_broker, stop_broker
from tests.gateway_helpers import GatewayProcess, stored_seqs, wait_until
from tests.mqtt_helpers import Broker, Deployment, connected

pytestmark = pytest.mark.broker

UNIT = "KEN-M01"


def children(pid: int) -> list[int]:
    """The process's child pids (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for its new parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def bulk_worker(gateway: GatewayProcess) -> int:
    assert gateway.process is not None
    workers = [
        pid
        for pid in children(gateway.process.pid)
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(workers) == 1, workers
    return workers[0]


def publish_position(broker: Broker, seq: int) -> None:
    password = broker.deployment.unit_password(UNIT)
    with connected(broker, UNIT, password, client_id=UNIT) as unit:
        position = Position(
            unit=UNIT, seq=seq, t_ms=int(time.time() * 1000), lat=34.2, lon=-6.5, fix=3
        )
        info = unit.client.publish(codec.topic_of(position), codec.encode(position), qos=1)
        info.wait_for_publish(timeout=10)


def test_the_bulk_worker_ends_when_the_gateway_is_killed(broker: Broker, tmp_path: Path) -> None:
    gateway = GatewayProcess(broker, tmp_path / "gateway.sqlite")
    assert gateway.process is not None
    worker = bulk_worker(gateway)
    helpers = children(gateway.process.pid)  # the worker, and multiprocessing's tracker
    gateway.kill()
    # An orphaned worker would keep the gateway's session and PUBACK nothing ever again.
    wait_until(lambda: all(gone(pid) for pid in helpers), timeout=10, what="the children ended")
    assert gone(worker)


def nice(pid: int) -> int:
    """A process's nice value, as the kernel has it (/proc/<pid>/stat field 19)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_the_bulk_worker_runs_below_the_gateway_that_sends_the_alarms(
    broker: Broker, tmp_path: Path
) -> None:
    gateway = GatewayProcess(broker, tmp_path / "gateway.sqlite")
    assert gateway.process is not None
    try:
        # gateway.toml leaves bulk_nice out: the default, 5 below the gateway's own priority.
        assert nice(bulk_worker(gateway)) == nice(gateway.process.pid) + 5
        publish_position(broker, 1)
        wait_until(lambda: stored_seqs(tmp_path / "gateway.sqlite") == [1], what="stored")
    finally:
        gateway.kill()
    config = tmp_path / "same-priority.toml"
    text = (broker.deployment.directory / "gateway.toml").read_text()
    config.write_text(text + "\n[ingest]\nbulk_nice = 0\n")
    gateway = GatewayProcess(broker, tmp_path / "gateway.sqlite", config=config)
    assert gateway.process is not None
    try:
        assert nice(bulk_worker(gateway)) == nice(gateway.process.pid)
    finally:
        gateway.kill()


def test_a_dead_bulk_worker_stops_the_gateway_with_an_error(broker: Broker, tmp_path: Path) -> None:
    gateway = GatewayProcess(broker, tmp_path / "gateway.sqlite")
    assert gateway.process is not None
    try:
        os.kill(bulk_worker(gateway), signal.SIGKILL)
        assert gateway.process.wait(10) == 2
        last = gateway.log().strip().splitlines()[-1]
        assert last == "balise gateway: the bulk lane's worker process ended (exit code -9)"
        assert "Traceback" not in gateway.log()
    finally:
        gateway.kill()


def test_the_bulk_lane_reconnects_after_the_broker_restarts(
    deployment: Deployment, tmp_path: Path
) -> None:
    db = tmp_path / "gateway.sqlite"
    broker = start_broker(deployment, tmp_path / "mosquitto.log")
    gateway = None
    try:
        gateway = GatewayProcess(broker, db)
        publish_position(broker, 1)
        wait_until(lambda: stored_seqs(db) == [1], what="the first position stored")
        stop_broker(broker)
        wait_until(
            lambda: httpx.get(f"{gateway.url}/health").json()["mqtt"] == "disconnected",
            what="/health to say the gateway lost the broker",
        )
        broker = start_broker(deployment, tmp_path / "mosquitto.log")
        wait_until(
            lambda: httpx.get(f"{gateway.url}/health").json()["mqtt"] == "connected",
            timeout=40,
            what="both lanes back on the broker",
        )
        publish_position(broker, 2)
        wait_until(lambda: stored_seqs(db) == [1, 2], what="a position after the restart stored")
    finally:
        if gateway is not None:
            gateway.kill()
        stop_broker(broker)
