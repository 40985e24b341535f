"""Scenario files against the real mosquitto and gateway: the shipped ones pass, a wrong
expectation fails naming itself, a bad file is refused naming the line and field."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators import scenario as scenarios
from simulators.errors import SimulatorError
from tests.conftest import free_port, provision, running_broker
from tests.gateway_helpers import GatewayProcess, create_token, gateway

pytestmark = pytest.mark.broker

SHIPPED = sorted((Path(scenarios.__file__).parent / "scenarios").glob("*.toml"))
UNITS = ("KEN-M01", "KEN-M02", "KEN-C01")


@pytest.fixture
def room(tmp_path: Path) -> Iterator[tuple[Path, GatewayProcess, str]]:
    deployment = provision(tmp_path / "deployment", UNITS, free_port())
    with (
        running_broker(deployment, tmp_path / "mosquitto.log") as broker,
        gateway(broker, tmp_path / "gateway.sqlite") as gw,
    ):
        yield deployment.directory, gw, create_token(gw.config, "scenarios", "viewer")


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_passes(room: tuple[Path, GatewayProcess, str], path: Path) -> None:
    deployment, gw, token = room
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "balise",
            "sim",
            "scenario",
            str(path),
            "--deployment",
            str(deployment),
            "--api",
            gw.url,
            "--token",
            token,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("passed")


def test_a_wrong_expectation_fails_and_names_itself(room: tuple[Path, GatewayProcess, str]) -> None:
    deployment, gw, token = room
    wrong = scenarios.parse(
        {
            "scenario": {"name": "wrong", "units": 2, "duration_s": 6},
            "expect": [{"by_s": 5, "unit": 1, "status": "on_scene"}],
        }
    )
    with pytest.raises(scenarios.ScenarioFailed) as failed:
        asyncio.run(scenarios.run_scenario(wrong, deployment, gw.url, token, log=lambda _: None))
    assert "expect 1 (unit KEN-M01, by 5 s): status is 'available', expected 'on_scene'" in str(
        failed.value
    )


ONE = {"units": 1, "duration_s": 5}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, r"\[scenario\]: missing table"),
        ({"scenario": {"units": 0, "duration_s": 5}}, "scenario.units: a number ≥ 1"),
        (
            {
                "scenario": {"units": 1, "duration_s": 5},
                "event": [{"at_s": 1, "unit": 0, "action": "fly"}],
            },
            "event 1.action: 'fly' is not one of",
        ),
        (
            {
                "scenario": {"units": 1, "duration_s": 5},
                "event": [{"at_s": 1, "unit": 3, "action": "sos"}],
            },
            "event 1.unit: 3 but the scenario runs 1 units",
        ),
        (
            {
                "scenario": {"units": 1, "duration_s": 5},
                "event": [{"at_s": 1, "unit": 0, "action": "press"}],
            },
            "event 1.status: a press needs",
        ),
        (
            {
                "scenario": {"units": 1, "duration_s": 5},
                "expect": [{"by_s": 1, "unit": 0, "colour": "red"}],
            },
            "expect 1: check one or more of",
        ),
    ],
)
def test_a_bad_scenario_is_refused_naming_what(document: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SimulatorError, match=message):
        scenarios.parse(document)


def test_a_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[scenario\n")
    with pytest.raises(SimulatorError, match=r"bad\.toml: not valid TOML"):
        scenarios.load(bad)
