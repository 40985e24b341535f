"""`balise demo` end to end: everything up, units live on the API, Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, processes_mentioning
from tests.gateway_helpers import Api, wait_until

pytestmark = pytest.mark.broker


@pytest.mark.parametrize("broker", ["mosquitto", "embedded"])
def test_the_demo_runs_the_whole_system_and_ctrl_c_stops_every_part(
    tmp_path: Path, broker: str
) -> None:
    demo_dir = tmp_path / "demo"
    port = free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "balise",
            "demo",
            "--dir",
            str(demo_dir),
            "--units",
            "5",
            "--http",
            f"127.0.0.1:{port}",
            "--broker",
            broker,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job is
    )
    try:
        api = Api(f"http://127.0.0.1:{port}")

        def logged_in() -> bool:
            try:
                return api.login("dispatcher", "balise-demo").status_code == 200
            except httpx.TransportError:
                return False  # not listening yet

        wait_until(logged_in, timeout=60, what="the demo's console and login")

        def five_live() -> bool:
            units = api.units()
            return len(units) == 5 and all(u["online"] and u["position"] for u in units.values())

        wait_until(five_live, timeout=30, what="the five demo units live on the API")
        assert {u["type"] for u in api.units().values()} == {"motorcycle", "car"}
        assert processes_mentioning(str(demo_dir)), "mosquitto and the gateway are running"
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C
        output, _ = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert demo.returncode == 0, output
    assert "console:  http://127.0.0.1:" in output and "dispatcher / balise-demo" in output
    assert "balise demo: stopped" in output
    assert ("embedded amqtt broker" in output) == (broker == "embedded")
    wait_until(lambda: not processes_mentioning(str(demo_dir)), timeout=10, what="no orphans")
