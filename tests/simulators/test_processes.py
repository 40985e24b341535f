"""simulators/processes.py: the gateway as a child process, when its HTTP port is taken."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulators import processes
from simulators.errors import SimulatorError
from tests.mqtt_helpers import Broker

pytestmark = pytest.mark.broker


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_a_port_it_chose_and_lost_meanwhile_is_replaced(
    broker: Broker, tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_free_port = processes.free_port
    offered = iter([taken_port])  # what free_port() said a moment before the other took it
    monkeypatch.setattr(processes, "free_port", lambda: next(offered, None) or real_free_port())
    config = broker.deployment.directory / "gateway.toml"
    gateway = processes.GatewayProcess(config, tmp_path / "gateway.sqlite")
    assert gateway.http_port == taken_port
    gateway.start()
    try:
        assert gateway.http_port != taken_port
        assert httpx.get(f"{gateway.url}/health", timeout=5).status_code in (200, 503)
    finally:
        gateway.stop()


def test_a_port_given_and_taken_is_a_clear_error(
    broker: Broker, tmp_path: Path, taken_port: int
) -> None:
    config = broker.deployment.directory / "gateway.toml"
    gateway = processes.GatewayProcess(config, tmp_path / "gateway.sqlite", taken_port)
    with pytest.raises(SimulatorError, match=f"cannot listen on 127.0.0.1:{taken_port}"):
        gateway.start()
    assert not gateway.running()
