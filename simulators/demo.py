"""`balise demo`: the whole system on this machine, in one command.

Provisions a demo deployment (once; kept in `--dir`, default `.demo/`), starts
the real mosquitto on it, the gateway with its SQLite store, HTTP API and
console, creates a dispatcher login, and runs a fleet of simulated units
around Kénitra. It prints the console's address and the login; Ctrl-C stops
everything, children included.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path

from balise.cli import main as balise_main
from simulators import embedded_broker, processes
from simulators.errors import SimulatorError
from simulators.fleet import FleetOptions, run_until_signal

DEMO_USER = "dispatcher"
DEMO_PASSWORD = "balise-demo"
BROKERS = ("auto", "mosquitto", "embedded")
EMBEDDED_NOTE = (
    "balise demo: using the embedded amqtt broker on loopback"
    " (for the demo only: slower, and it forgets queued messages when it stops)."
)
NO_MOSQUITTO_NOTE = "balise demo: mosquitto is not installed (`apt-get install mosquitto`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=Path(".demo"), help="the demo deployment")
    parser.add_argument("--units", type=int, default=50, help="simulated units (default 50)")
    parser.add_argument("--http", default="127.0.0.1:8080", metavar="HOST:PORT")
    parser.add_argument("--broker-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--duration", type=float, help="seconds (default: until Ctrl-C)")
    parser.add_argument("--sos-per-hour", type=float, default=0.2, help="per unit")
    parser.add_argument(
        "--broker",
        choices=BROKERS,
        default="auto",
        help="auto (default): mosquitto when installed, else the embedded amqtt broker",
    )


def choose_broker(choice: str) -> str:
    """'mosquitto' or 'embedded' for --broker `choice` on this machine."""
    if choice == "auto":
        if processes.find_mosquitto() is not None:
            return "mosquitto"
        print(NO_MOSQUITTO_NOTE, flush=True)
        return "embedded"
    return choice


def _units(count: int) -> str:
    motorcycles = (count * 3 + 4) // 5
    ids = [f"KEN-M{i:02d}:motorcycle" for i in range(1, motorcycles + 1)]
    ids += [f"KEN-C{i:02d}:car" for i in range(1, count - motorcycles + 1)]
    return ",".join(ids)


def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir.resolve()
    port = args.broker_port or processes.free_port()
    kind = choose_broker(args.broker)
    if kind == "mosquitto":
        processes.mosquitto_program()  # says what to install before anything is written
    else:
        embedded_broker.check_installed()
    provision = ["provision", "--dir", str(directory), "--units", _units(args.units)]
    provision += ["--host", "127.0.0.1", "--bind", "127.0.0.1", "--port", str(port)]
    if balise_main(provision) != 0:
        return 2
    config = directory / "gateway.toml"
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)
    (logs / f"{kind}.log").unlink(missing_ok=True)
    (logs / "gateway.log").unlink(missing_ok=True)
    host, _, http_port = args.http.rpartition(":")
    broker = processes.BrokerProcess(
        directory, "127.0.0.1", port, logs / f"{kind}.log", embedded=kind == "embedded"
    )
    if kind == "embedded":
        print(EMBEDDED_NOTE, flush=True)
    gateway = processes.GatewayProcess(
        config, None, int(http_port), logs / "gateway.log", http_host=host
    )
    try:
        broker.start()
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
        gateway.start()
        url = gateway.url
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
        processes.stop_process(gateway.process)
        broker.stop()
    print("balise demo: stopped", file=sys.stderr)
    return 0
