"""Fixtures shared by the whole test suite.

`deployment`: `balise provision` run into a temporary directory for a broker on a free port
of 127.0.0.1, with units KEN-M01 and KEN-C01. `broker`: the real mosquitto started on it.
A broker that does not start fails the test with mosquitto's own output; it is never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from balise.cli import main as balise_main
from simulators import processes
from simulators.errors import SimulatorError
from tests.gpsfake_helpers import GpsFake
from tests.mqtt_helpers import Broker, Deployment

UNIT_IDS = ("KEN-M01", "KEN-C01")
BROKER_HOST = "127.0.0.1"


def free_port(host: str = BROKER_HOST) -> int:
    return processes.free_port(host)


def processes_mentioning(text: str) -> list[str]:
    """The processes whose command line contains `text` (to find what a test left running)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


def mosquitto_program() -> str:
    try:
        return processes.mosquitto_program()
    except SimulatorError as exc:
        pytest.fail(f"{exc}: run scripts/system-deps.sh")


def provision(directory: Path, unit_ids: tuple[str, ...], port: int, *extra: str) -> Deployment:
    """Run `balise provision` as the CLI does; fail the test if it does not succeed."""
    argv = ["provision", "--dir", str(directory), "--units", ",".join(unit_ids)]
    argv += ["--host", BROKER_HOST, "--bind", BROKER_HOST, "--port", str(port), *extra]
    assert balise_main(argv) == 0, f"balise {' '.join(argv)} failed"
    return Deployment(directory, BROKER_HOST, port, unit_ids)


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return provision(tmp_path / "deployment", UNIT_IDS, free_port())


@pytest.fixture
def broker(deployment: Deployment, tmp_path: Path) -> Iterator[Broker]:
    with running_broker(deployment, tmp_path / "mosquitto.log") as running:
        yield running


def start_broker(deployment: Deployment, log_path: Path) -> Broker:
    """Start mosquitto on `deployment` and return once it completes a TLS handshake."""
    mosquitto_program()  # fails the test with the install hint
    try:
        process = processes.start_mosquitto(
            deployment.conf, deployment.host, deployment.port, deployment.ca_cert, log_path
        )
    except SimulatorError as exc:
        pytest.fail(str(exc))
    return Broker(deployment, process, log_path)


def stop_broker(broker: Broker) -> None:
    processes.stop_process(broker.process)


@contextmanager
def running_broker(deployment: Deployment, log_path: Path) -> Iterator[Broker]:
    """A started broker, stopped on exit; one that died during the test fails it."""
    broker = start_broker(deployment, log_path)
    try:
        yield broker
    finally:
        died = broker.process.poll()
        stop_broker(broker)
    if died is not None:
        pytest.fail(f"mosquitto died during the test ({died}):\n{broker.log()}")


@pytest.fixture
def gpsfake(tmp_path: Path) -> Iterator[GpsFake]:
    """gpsd's gpsfake replays (tests/gpsfake_helpers.py), all stopped when the test ends."""
    replays = GpsFake(tmp_path)
    try:
        yield replays
    finally:
        replays.stop_all()
