"""`balise sim fleet --processes K`: one fleet over K worker processes, against the real
mosquitto and gateway; every way of stopping it leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from balise.cli import build_parser
from simulators.errors import SimulatorError
from simulators.fleet import Fleet, FleetOptions
from simulators.fleet_processes import default_processes, shares, worker_argv
from simulators.world import Zone
from tests.conftest import free_port, processes_mentioning, provision
from tests.gateway_helpers import Api, create_token, gateway, wait_until
from tests.mqtt_helpers import Broker, connected


def test_units_are_shared_out_in_contiguous_near_equal_shares() -> None:
    assert shares(20, 2) == [(0, 10), (10, 10)]
    assert shares(7, 3) == [(0, 2), (2, 2), (4, 3)]
    assert sum(count for _, count in shares(5001, 2)) == 5001
    with pytest.raises(SimulatorError, match="--processes 3: more processes than the 2 units"):
        shares(2, 3)
    with pytest.raises(SimulatorError, match="--processes 0: at least 1"):
        shares(2, 0)


def test_a_small_fleet_runs_in_one_process_and_a_large_one_on_every_core() -> None:
    assert default_processes(50, cores=2) == 1
    assert default_processes(1000, cores=2) == 1
    assert default_processes(1001, cores=2) == 2
    assert default_processes(5000, cores=2) == 2
    assert default_processes(5000, cores=8) == 5
    assert default_processes(5000, cores=1) == 1


def test_a_worker_gets_every_option_of_the_fleet_through_its_command_line(tmp_path: Path) -> None:
    options = FleetOptions(
        tmp_path,
        units=20,
        seed=7,
        center=(34.25, -6.6),
        sos_per_hour=0.5,
        on_scene_s=(1.0, 2.5),
        dead_zones=[Zone(34.26, -6.58, 300.0)],
        tunnels=[Zone(34.27, -6.57, 50.0), Zone(34.28, -6.56, 40.0)],
        latency_s=0.25,
        connect_spread_s=2.0,
    )
    argv = worker_argv(options, first=10, count=10)
    assert argv[:3] == [sys.executable, "-m", "balise"]
    args = build_parser("sim").parse_args(argv[3:])
    assert args.worker and args.first_unit == 10 and args.units == 10
    assert (args.deployment, args.seed, args.center) == (tmp_path, 7, (34.25, -6.6))
    assert (args.sos_per_hour, args.on_scene, args.latency) == (0.5, (1.0, 2.5), 0.25)
    assert args.connect_spread == 2.0
    assert [(z.lat, z.lon, z.radius_m) for z in args.dead_zone] == [(34.26, -6.58, 300.0)]
    assert [(z.lat, z.lon, z.radius_m) for z in args.tunnel] == [
        (34.27, -6.57, 50.0),
        (34.28, -6.56, 40.0),
    ]


def test_more_processes_than_units_is_refused_naming_the_option(tmp_path: Path) -> None:
    deployment = provision(tmp_path / "d", ("KEN-M01", "KEN-M02"), free_port()).directory
    result = fleet_command(deployment, "--units", "2", "--processes", "3")
    assert result.returncode == 2
    assert "--processes 3: more processes than the 2 units" in result.stderr


def test_first_unit_past_the_deployment_is_refused(tmp_path: Path) -> None:
    deployment = provision(tmp_path / "d", ("KEN-M01", "KEN-M02"), free_port()).directory
    result = fleet_command(deployment, "--units", "2", "--first-unit", "1")
    assert result.returncode == 2
    assert "--units 2 from --first-unit 1: the deployment" in result.stderr
    assert "has only 2 units" in result.stderr


def fleet_command(deployment: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "balise", "sim", "fleet", "--deployment", str(deployment)]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=60)


@contextmanager
def fleet_process(deployment: Path, units: int, processes: int) -> Iterator[subprocess.Popen[str]]:
    """`balise sim fleet` as a terminal would run it; SIGKILLed with its group if still there."""
    argv = [sys.executable, "-m", "balise", "sim", "fleet", "--deployment", str(deployment)]
    argv += ["--units", str(units), "--processes", str(processes), "--connect-spread", "1"]
    fleet = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job is
    )
    try:
        yield fleet
    finally:
        if fleet.poll() is None:
            os.killpg(fleet.pid, signal.SIGKILL)
            fleet.wait()
        for line in processes_mentioning(f"--worker --deployment {deployment}"):
            os.kill(int(line.split(":")[0]), signal.SIGKILL)


def workers_of(deployment: Path) -> list[str]:
    return processes_mentioning(f"--worker --deployment {deployment}")


@pytest.mark.broker
def test_twenty_units_over_two_processes_are_live_and_sigterm_stops_every_worker(
    big_broker: Broker, tmp_path: Path
) -> None:
    deployment = big_broker.deployment.directory
    with (
        gateway(big_broker, tmp_path / "gateway.sqlite") as gw,
        fleet_process(deployment, 20, 2) as fleet,
    ):
        api = Api(gw.url, token=create_token(gw.config, "test", "dispatcher"))
        wait_until(
            lambda: api.all_live(20), timeout=30, what="all 20 units online, placed and available"
        )
        workers = workers_of(deployment)
        assert len(workers) == 2, workers
        assert any("--first-unit 0 --units 10" in w for w in workers), workers
        assert any("--first-unit 10 --units 10" in w for w in workers), workers
        fleet.send_signal(signal.SIGTERM)  # to the parent alone: it stops the workers
        _out, err = fleet.communicate(timeout=30)
        assert fleet.returncode == 0, err
        assert "fleet: 20 units in 2 processes" in err
        assert not workers_of(deployment), "no worker outlives the fleet"
        # Each unit signed off (a clean DISCONNECT after its offline message): no will needed.
        wait_until(
            lambda: not any(u["online"] for u in api.units().values()),
            timeout=10,
            what="all 20 units offline after they signed off",
        )


def wait_online(broker: Broker, units: int) -> None:
    username, password = broker.deployment.gateway_user()
    with connected(
        broker, username, password, client_id="test-online", subscribe=["balise/v1/+/online"]
    ) as session:
        wait_until(lambda: len(session.topics()) == units, timeout=30, what=f"{units} units up")


@pytest.mark.broker
def test_a_worker_that_dies_is_named_and_the_fleet_stops_the_others_and_fails(
    big_broker: Broker,
) -> None:
    deployment = big_broker.deployment.directory
    with fleet_process(deployment, 6, 2) as fleet:
        wait_online(big_broker, 6)
        second = next(w for w in workers_of(deployment) if "--first-unit 3 " in w)
        os.kill(int(second.split(":")[0]), signal.SIGKILL)
        _out, err = fleet.communicate(timeout=30)
        assert fleet.returncode == 1, err
        assert "fleet worker 2 of 2 (units KEN-C04..KEN-C06, pid" in err, err
        assert "was killed by SIGKILL; the other workers were stopped" in err, err
        assert not workers_of(deployment), "the other worker was stopped too"


@pytest.mark.broker
def test_ctrl_c_stops_the_fleet_and_its_workers(big_broker: Broker) -> None:
    deployment = big_broker.deployment.directory
    with fleet_process(deployment, 4, 2) as fleet:
        wait_online(big_broker, 4)
        os.killpg(fleet.pid, signal.SIGINT)  # Ctrl-C: the whole group gets it
        _out, err = fleet.communicate(timeout=30)
        assert fleet.returncode == 0, err
        assert "fleet: 4 units in 2 processes" in err
        assert not workers_of(deployment)


@pytest.mark.broker
def test_workers_stop_by_themselves_when_the_parent_is_killed(big_broker: Broker) -> None:
    deployment = big_broker.deployment.directory
    with fleet_process(deployment, 4, 2) as fleet:
        wait_online(big_broker, 4)
        assert len(workers_of(deployment)) == 2
        os.kill(fleet.pid, signal.SIGKILL)  # no chance to stop anything: stdin closes
        fleet.wait()
        wait_until(lambda: not workers_of(deployment), timeout=15, what="the workers gone")


def test_a_fleet_that_falls_seconds_behind_skips_them_instead_of_a_burst_of_fixes(
    tmp_path: Path,
) -> None:
    # No broker: the units' connects are refused and retried, which is all this needs.
    deployment = provision(tmp_path / "d", ("KEN-M01", "KEN-M02"), free_port()).directory
    loop = asyncio.new_event_loop()
    fleet = Fleet(FleetOptions(deployment, units=2, connect_spread_s=0), loop)
    covered: dict[str, list[float]] = {u.id: [] for u in fleet.units}

    def recording(unit_id: str, step: Callable[[float], None]) -> Callable[[float], None]:
        def step_and_record(dt_s: float) -> None:
            covered[unit_id].append(dt_s)
            step(dt_s)

        return step_and_record

    async def stall_then_watch() -> None:
        runner = asyncio.create_task(fleet.run())
        await asyncio.sleep(1.5)
        for unit in fleet.units:
            covered[unit.id].clear()
            unit.vehicle.step = recording(unit.id, unit.vehicle.step)  # type: ignore[method-assign]
        time.sleep(3.2)  # the loop blocked: three whole seconds late
        await asyncio.sleep(1.0)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

    loop.run_until_complete(stall_then_watch())
    loop.close()
    for unit in fleet.units:
        steps = covered[unit.id]
        # 4.2 s of wall clock: one or two steps after the stall, not four in a burst...
        assert 1 <= len(steps) <= 2, steps
        # ...and the first moves the vehicle on by the seconds skipped as well.
        assert steps[0] >= 3.0 and 4.0 <= sum(steps) <= 5.0, steps
        assert unit.owed_s == 0
