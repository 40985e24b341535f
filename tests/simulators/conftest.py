"""Fixtures of the simulators' tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, provision, running_broker
from tests.mqtt_helpers import Broker

FLEET_UNITS = tuple(f"KEN-M{i:02d}" for i in range(1, 13)) + tuple(
    f"KEN-C{i:02d}" for i in range(1, 9)
)


@pytest.fixture
def big_broker(tmp_path: Path) -> Iterator[Broker]:
    """The real mosquitto on a deployment of 20 units (12 motorcycles, 8 cars)."""
    deployment = provision(tmp_path / "deployment", FLEET_UNITS, free_port())
    with running_broker(deployment, tmp_path / "mosquitto.log") as broker:
        yield broker
