"""`balise demo`: the whole system on this machine, in one command.

Provisions a demo deployment (once; kept in `--dir`, default `.demo/`), starts
the real mosquitto on it (or, where mosquitto is not installed, the embedded
amqtt broker from PyPI on loopback, with a printed note: see
simulators/embedded_broker.py), the gateway with its SQLite store, HTTP API and
console, creates a dispatcher login, and runs a fleet of simulated units
around Kénitra. It prints the console's address and the login; Ctrl-C stops
everything, children included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from balise.cli import main as balise_main
from simulators import embedded_broker
from simulators.errors import SimulatorError
from simulators.fleet import FleetOptions, run_until_signal

DEMO_USER = "dispatcher"
DEMO_PASSWORD = "balise-demo"
BROKERS = ("auto", "mosquitto", "embedded")
EMBEDDED_NOTE = (
    "balise demo: mosquitto is not installed; using the embedded amqtt broker on loopback"
    " (for the demo only: slower, and it forgets queued messages when it stops)."
    " `apt-get install mosquitto` for the real one."
)
START_S = 20.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=Path(".demo"), help="the demo deployment")
    parser.add_argument("--units", type=int, default=50, help="simulated units (default 50)")
    parser.add_argument("--http", default="127.0.0.1:8080", metavar="HOST:PORT")
    parser.add_argument("--broker-port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--broker",
        choices=BROKERS,
        default="auto",
        help="auto (default): mosquitto when installed, else the embedded amqtt broker",
    )
    parser.add_argument("--duration", type=float, help="seconds (default: until Ctrl-C)")
    parser.add_argument("--sos-per-hour", type=float, default=0.2, help="per unit")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _mosquitto() -> str:
    program = embedded_broker.mosquitto_program()
    if program is None:
        raise SimulatorError(
            "mosquitto is not installed: run `make demo` as root (it installs it), "
            "`apt-get install mosquitto`, or use --broker embedded"
        )
    return program


def choose_broker(choice: str) -> str:
    """'mosquitto' or 'embedded' for --broker `choice` on this machine."""
    if choice == "auto":
        return "mosquitto" if embedded_broker.mosquitto_program() else "embedded"
    return choice


def _start_broker(kind: str, directory: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    if kind == "embedded":
        print(EMBEDDED_NOTE, flush=True)
        return embedded_broker.start(directory, log)
    return subprocess.Popen(
        [_mosquitto(), "-c", str(directory / "mosquitto.conf")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _units(count: int) -> str:
    motorcycles = (count * 3 + 4) // 5
    ids = [f"KEN-M{i:02d}:motorcycle" for i in range(1, motorcycles + 1)]
    ids += [f"KEN-C{i:02d}:car" for i in range(1, count - motorcycles + 1)]
    return ",".join(ids)


def _wait_for_tls(host: str, port: int, ca_file: Path, process: subprocess.Popen[bytes]) -> None:
    context = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SimulatorError(f"the broker exited with status {process.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection((host, port), timeout=1) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return
        time.sleep(0.1)
    raise SimulatorError(f"the broker did not accept TLS on {host}:{port} within {START_S:.0f} s")


def _wait_for_http(url: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SimulatorError(f"the gateway exited with status {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=1)
            return
        time.sleep(0.1)
    raise SimulatorError(f"the gateway did not answer on {url} within {START_S:.0f} s")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir.resolve()
    port = args.broker_port or free_port()
    broker_kind = choose_broker(args.broker)
    if broker_kind == "mosquitto":
        _mosquitto()  # fail before provisioning, naming what to install
    provision = ["provision", "--dir", str(directory), "--units", _units(args.units)]
    provision += ["--host", "127.0.0.1", "--bind", "127.0.0.1", "--port", str(port)]
    if balise_main(provision) != 0:
        return 2
    config = directory / "gateway.toml"
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)
    broker = gateway = None
    try:
        with (logs / f"{broker_kind}.log").open("wb") as log:
            broker = _start_broker(broker_kind, directory, log)
        _wait_for_tls("127.0.0.1", port, directory / "ca.crt", broker)
        users = subprocess.run(
            [
                sys.executable,
                "-m",
                "balise",
                "users",
                "add",
                DEMO_USER,
                "--role",
                "admin",
                "--config",
                str(config),
            ],
            input=DEMO_PASSWORD,
            text=True,
            capture_output=True,
        )
        if users.returncode != 0:
            raise SimulatorError(f"cannot create the demo login: {users.stderr.strip()}")
        with (logs / "gateway.log").open("wb") as log:
            gateway = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "balise",
                    "gateway",
                    "--config",
                    str(config),
                    "--http",
                    args.http,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://{args.http}"
        _wait_for_http(url, gateway)
        print(
            f"\nbalise demo: {args.units} units around Kénitra\n"
            f"  console:  {url}/   login: {DEMO_USER} / {DEMO_PASSWORD}\n"
            f"  API:      {url}/docs\n"
            f"  logs:     {logs}/\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        options = FleetOptions(
            deployment=directory, units=args.units, sos_per_hour=args.sos_per_hour
        )
        asyncio.run(run_until_signal(options, args.duration))
    finally:
        _stop(gateway)
        _stop(broker)
    print("balise demo: stopped", file=sys.stderr)
    return 0
