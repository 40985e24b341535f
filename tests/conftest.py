"""Fixtures shared by the whole test suite.

`deployment`: `balise provision` run into a temporary directory for a broker on a free port
of 127.0.0.1, with units KEN-M01 and KEN-C01. `broker`: the real mosquitto started on it.
A broker that does not start fails the test with mosquitto's own output; it is never skipped.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from balise.cli import main as balise_main
from tests.gpsfake_helpers import GpsFake
from tests.mqtt_helpers import Broker, Deployment

UNIT_IDS = ("KEN-M01", "KEN-C01")
BROKER_HOST = "127.0.0.1"
BROKER_START_S = 10.0
BROKER_STOP_S = 5.0


def free_port(host: str = BROKER_HOST) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


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
    # mosquitto lives in /usr/sbin, which is not always on PATH
    program = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if program is None:
        pytest.fail("mosquitto is not installed: run scripts/system-deps.sh")
    return program


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
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [mosquitto_program(), "-c", str(deployment.conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    broker = Broker(deployment, process, log_path)
    deadline = time.monotonic() + BROKER_START_S
    while not _accepts_tls(deployment):
        if process.poll() is not None:
            pytest.fail(f"mosquitto exited with status {process.returncode}:\n{broker.log()}")
        if time.monotonic() > deadline:
            stop_broker(broker)
            pytest.fail(f"mosquitto did not accept TLS within {BROKER_START_S} s:\n{broker.log()}")
        time.sleep(0.02)
    return broker


def stop_broker(broker: Broker) -> None:
    broker.process.terminate()
    try:
        broker.process.wait(timeout=BROKER_STOP_S)
    except subprocess.TimeoutExpired:
        broker.process.kill()
        broker.process.wait()


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


def _accepts_tls(deployment: Deployment) -> bool:
    context = ssl.create_default_context(cafile=str(deployment.ca_cert))
    try:
        with (
            socket.create_connection((deployment.host, deployment.port), timeout=1.0) as raw,
            context.wrap_socket(raw, server_hostname=deployment.host),
        ):
            return True
    except OSError:  # refused while starting; ssl.SSLError is an OSError too
        return False


@pytest.fixture
def gpsfake(tmp_path: Path) -> Iterator[GpsFake]:
    """gpsd's gpsfake replays (tests/gpsfake_helpers.py), all stopped when the test ends."""
    replays = GpsFake(tmp_path)
    try:
        yield replays
    finally:
        replays.stop_all()
