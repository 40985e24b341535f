"""Scenario files against the real mosquitto and gateway: the shipped ones pass (the runner
starting both, and a given pair), a wrong expectation fails naming itself, records that did
not reach the store and reconnects that are not spread fail `delivered` and
`reconnect_spread_s`, and a bad file or a missing flag is refused naming what is wrong."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators import scenario as scenarios
from simulators.errors import SimulatorError
from simulators.testbed import TestbedOptions
from tests.conftest import free_port, provision, running_broker
from tests.gateway_helpers import GatewayProcess, create_token, gateway

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


def sim_scenario(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "balise", "sim", "scenario", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.timeout(200)
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_passes_with_the_runner_owning_broker_and_gateway(
    tmp_path: Path, path: Path
) -> None:
    # broker_restart.toml is the full 1,000 units: about 70 s on 2 busy cores
    result = sim_scenario(str(path), "--start-broker", "--start-gateway", "--work", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("passed")
    if "delivered" in path.read_text():
        assert "stored once each" in result.stdout
        assert "LOST" not in result.stdout


@pytest.mark.broker
@pytest.mark.slow
def test_a_scenario_runs_against_a_given_broker_and_gateway(
    room: tuple[Path, GatewayProcess, str], tmp_path: Path
) -> None:
    deployment, gw, token = room
    args = [str(Path(scenarios.__file__).parent / "scenarios" / "dead_zone.toml")]
    args += ["--deployment", str(deployment), "--api", gw.url, "--token", token]
    result = sim_scenario(*args, "--work", str(tmp_path / "work"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("passed")


def given(room: tuple[Path, GatewayProcess, str], tmp_path: Path) -> TestbedOptions:
    deployment, gw, token = room
    return TestbedOptions(
        tmp_path / "work", deployment, api_url=gw.url, token=token, db=tmp_path / "gateway.sqlite"
    )


def failure(document: dict[str, Any], options: TestbedOptions) -> str:
    with pytest.raises(scenarios.ScenarioFailed) as failed:
        asyncio.run(scenarios.run_scenario(scenarios.parse(document), options, log=lambda _: None))
    return str(failed.value)


@pytest.mark.broker
def test_a_wrong_expectation_fails_and_names_itself(
    room: tuple[Path, GatewayProcess, str], tmp_path: Path
) -> None:
    wrong = {
        "scenario": {"name": "wrong", "units": 2, "duration_s": 6},
        "expect": [{"by_s": 5, "unit": 1, "status": "on_scene"}],
    }
    message = failure(wrong, given(room, tmp_path))
    assert "expect 1 (unit KEN-M01, by 5 s): status is 'available', expected 'on_scene'" in message


@pytest.mark.broker
def test_records_that_never_reached_the_store_fail_delivered_naming_unit_and_seqs(
    room: tuple[Path, GatewayProcess, str], tmp_path: Path
) -> None:
    # KEN-M01 goes into a dead zone and stays there: what it made inside is not stored
    lost = {
        "scenario": {"name": "lost", "units": 2, "duration_s": 12},
        "event": [{"at_s": 2, "unit": 1, "action": "link_lost"}],
        "expect": [{"from_s": 11, "by_s": 12, "delivered": True}],
    }
    message = failure(lost, given(room, tmp_path))
    assert message.startswith("expect 1 (the fleet, by 12 s): not delivered: KEN-M01: ")
    assert "records made but not stored (pos" in message
    assert "KEN-C01" not in message  # the unit on the air lost nothing


@pytest.mark.broker
@pytest.mark.slow
def test_reconnects_narrower_than_expected_fail_reconnect_spread(tmp_path: Path) -> None:
    narrow = {
        "scenario": {"name": "narrow", "units": 5, "duration_s": 14},
        "event": [{"at_s": 3, "action": "broker_restart"}],
        "expect": [{"from_s": 3, "by_s": 14, "reconnect_spread_s": 60}],
    }
    options = TestbedOptions(tmp_path, start_broker=True, start_gateway=True)
    message = failure(narrow, options)
    assert "expect 1 (the fleet, by 14 s): reconnects spread over " in message
    assert "(10th-90th percentile), expected ≥ 60" in message


ONE = {"units": 1, "duration_s": 5}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, r"\[scenario\]: missing table"),
        ({"scenario": {"units": 0, "duration_s": 5}}, "scenario.units: a number ≥ 1"),
        (
            {"scenario": {**ONE, "connect_spread_s": -1}},
            "scenario.connect_spread_s: a number ≥ 0",
        ),
        (
            {"scenario": ONE, "event": [{"at_s": 1, "unit": 0, "action": "fly"}]},
            "event 1.action: 'fly' is not one of",
        ),
        (
            {"scenario": ONE, "event": [{"at_s": 1, "unit": 3, "action": "sos"}]},
            "event 1.unit: 3 but the scenario runs 1 units",
        ),
        (
            {"scenario": ONE, "event": [{"at_s": 1, "unit": 0, "action": "press"}]},
            "event 1.status: a press needs",
        ),
        (
            {"scenario": ONE, "event": [{"at_s": 1, "unit": 0, "action": "broker_restart"}]},
            "event 1.unit: broker_restart acts on the whole fleet: remove unit",
        ),
        (
            {"scenario": ONE, "event": [{"at_s": 1, "action": "power_cut"}]},
            "event 1.unit: a number ≥ 0 is needed, got None",
        ),
        (
            {"scenario": ONE, "event": [{"at_s": 2, "unit": 0, "action": "reboot"}]},
            "event 1.action: reboot at 2 s, but unit 0 has power then",
        ),
        (
            {
                "scenario": ONE,
                "event": [
                    {"at_s": 3, "unit": 0, "action": "power_cut"},
                    {"at_s": 1, "unit": 0, "action": "power_cut"},
                ],
            },
            r"event 1.action: power_cut at 3 s, but unit 0 has no power then \(since event 2\)",
        ),
        (
            {"scenario": ONE, "event": [{"at_s": 1, "action": "gateway_start"}]},
            "event 1.action: gateway_start at 1 s, but the gateway is running then",
        ),
        (
            {
                "scenario": ONE,
                "event": [
                    {"at_s": 1, "action": "broker_stop"},
                    {"at_s": 2, "action": "broker_restart"},
                ],
            },
            "event 2.action: broker_restart at 2 s, but the broker is down then",
        ),
        (
            {"scenario": ONE, "expect": [{"by_s": 1, "unit": 0, "colour": "red"}]},
            r"expect 1: about a unit, check one or more of status.*; got \['colour'\]",
        ),
        (
            {"scenario": ONE, "expect": [{"by_s": 1, "status": "busy"}]},
            r"expect 1: about the fleet \(no unit\), check one or more of all_online",
        ),
        (
            {"scenario": ONE, "expect": [{"by_s": 1, "delivered": False}]},
            "expect 1.delivered: only `delivered = true` can be checked, got False",
        ),
        (
            {"scenario": ONE, "expect": [{"by_s": 1, "all_online": 1}]},
            "expect 1.all_online: true or false, got 1",
        ),
        (
            {"scenario": ONE, "expect": [{"by_s": 4, "reconnect_spread_s": 1}]},
            "expect 1.reconnect_spread_s: no broker_stop or broker_restart event",
        ),
        (
            {"scenario": ONE, "expect": [{"from_s": 5, "by_s": 4, "unit": 0, "online": True}]},
            "expect 1.from_s: 5 is after by_s = 4",
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


@pytest.mark.parametrize(
    ("document", "options", "message"),
    [
        (
            {"scenario": ONE, "event": [{"at_s": 1, "action": "broker_restart"}]},
            {"start_gateway": True},
            "event 1.action: broker_restart needs the runner to own the broker: add --start-broker",
        ),
        (
            {"scenario": ONE, "event": [{"at_s": 1, "action": "gateway_kill"}]},
            {"start_broker": True, "token": "t"},
            "event 1.action: gateway_kill needs the runner to own the gateway: add --start-gateway",
        ),
        (
            {"scenario": ONE, "expect": [{"by_s": 1, "delivered": True}]},
            {"token": "t"},
            "expect 1.delivered: needs the gateway's store: add --start-gateway, or --db",
        ),
        (
            {"scenario": ONE},
            {"start_broker": True},
            "without --deployment the runner provisions its own.*--start-broker --start-gateway",
        ),
        (
            {"scenario": ONE},
            {"deployment": Path("/nonexistent")},
            "--token is needed for a gateway the runner does not start",
        ),
    ],
)
def test_what_the_runner_does_not_own_is_refused_before_anything_starts(
    tmp_path: Path, document: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    scenario = scenarios.parse(document)
    with pytest.raises(SimulatorError, match=message):
        asyncio.run(scenarios.run_scenario(scenario, TestbedOptions(tmp_path, **options)))
    assert not (tmp_path / "deployment").exists()  # nothing was provisioned


def test_the_command_refuses_a_scenario_it_cannot_run_and_says_which_flag(
    tmp_path: Path,
) -> None:
    power_cut = Path(scenarios.__file__).parent / "scenarios" / "gateway_kill.toml"
    result = sim_scenario(str(power_cut), "--start-broker", "--work", str(tmp_path / "work"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        "event 1.action: gateway_kill needs the runner to own the gateway: add --start-gateway"
        in result.stderr
    )
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_spread_is_the_span_of_the_middle_eighty_percent() -> None:
    assert scenarios.spread([float(i) for i in range(101)]) == 80.0
    assert scenarios.spread([0.0] * 50 + [float(i) for i in range(1, 11)]) == 4.0
    assert scenarios.spread([5.0] * 100) == 0.0
    assert scenarios.spread([1.0]) == 0.0


def test_every_action_a_file_may_name_has_a_handler() -> None:
    from simulators import scenario_file, testbed

    assert set(scenarios.UNIT_EVENTS) == set(scenario_file.UNIT_ACTIONS)
    assert all(
        callable(getattr(testbed.Testbed, name, None)) for name in scenario_file.FLEET_ACTIONS
    )


def test_the_reconnect_histogram_counts_per_second_and_the_busiest_100_ms() -> None:
    times = [10.05, 10.06, 10.5, 11.2, 13.9]
    assert scenarios.histogram(times, since=10.0) == (
        "first at +0.1 s, last at +3.9 s; per second: 0-1 s: 3, 1-2 s: 1, 3-4 s: 1; "
        "at most 2 in any 100 ms"
    )
