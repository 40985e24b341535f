"""What a scenario runs against: a deployment, a broker, a gateway and its store.

Each is either given (`--deployment`, `--api`/`--token`, `--db`) or owned by the
runner (`--start-broker`, `--start-gateway`; with no `--deployment` the runner
provisions one with `balise provision` in its work directory). The runner can
stop, restart and kill only what it owns. Imports simulators.processes and the
gateway's provisioning and room store (to make its own API token).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import tomllib
from dataclasses import dataclass
from pathlib import Path

from simulators import processes
from simulators.errors import SimulatorError

HOST = processes.HOST


@dataclass
class TestbedOptions:
    __test__ = False  # not a pytest test class, despite its name
    work: Path  # logs, the store, the unit files, a provisioned deployment
    deployment: Path | None = None
    start_broker: bool = False
    start_gateway: bool = False
    api_url: str = "http://127.0.0.1:8080"
    token: str | None = None
    db: Path | None = None  # a given gateway's store, read-only (for `delivered`)


def unit_ids(count: int) -> str:
    """`balise provision --units` for `count` units: three motorcycles for two cars."""
    motorcycles = (count * 3 + 4) // 5
    ids = [f"KEN-M{i:02d}:motorcycle" for i in range(1, motorcycles + 1)]
    ids += [f"KEN-C{i:02d}:car" for i in range(1, count - motorcycles + 1)]
    return ",".join(ids)


def provision(directory: Path, count: int, port: int) -> None:
    from balise.cli import main as balise_main

    argv = ["provision", "--dir", str(directory), "--units", unit_ids(count)]
    argv += ["--host", HOST, "--bind", HOST, "--port", str(port)]
    with contextlib.redirect_stdout(io.StringIO()):
        failed = balise_main(argv) != 0
    if failed:
        raise SimulatorError(f"balise {' '.join(argv[:3])} ... failed")


def broker_address(deployment: Path) -> tuple[str, int]:
    """The host and port mosquitto listens on, from the deployment's gateway.toml."""
    try:
        broker = tomllib.loads((deployment / "gateway.toml").read_text())["broker"]
        return str(broker["host"]), int(broker["port"])
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SimulatorError(f"{deployment}: no usable gateway.toml [broker]: {exc}") from exc


class Testbed:
    """The deployment, and the processes the runner owns; `close()` stops them."""

    __test__ = False

    def __init__(self, options: TestbedOptions, units: int) -> None:
        if options.deployment is None and not (options.start_broker and options.start_gateway):
            raise SimulatorError(
                "without --deployment the runner provisions its own, and must run the broker "
                "and the gateway on it: add --start-broker --start-gateway"
            )
        if not options.start_gateway and not options.token:
            raise SimulatorError("--token is needed for a gateway the runner does not start")
        self.options = options
        options.work.mkdir(parents=True, exist_ok=True)
        if options.deployment is None:
            self.deployment = options.work / "deployment"
            provision(self.deployment, units, processes.free_port())
        else:
            self.deployment = options.deployment
        self.broker: processes.BrokerProcess | None = None
        self.gateway: processes.GatewayProcess | None = None
        self.api_url, self.token, self.db = options.api_url, options.token, options.db
        if options.start_broker:
            host, port = broker_address(self.deployment)
            self.broker = processes.BrokerProcess(
                self.deployment, host, port, options.work / "mosquitto.log"
            )
        if options.start_gateway:
            self.db = options.work / "gateway.sqlite"
            self.gateway = processes.GatewayProcess(
                self.deployment / "gateway.toml",
                self.db,
                log_path=options.work / "gateway.log",
            )
            self.api_url = self.gateway.url
            self.token = self._make_token()

    def _make_token(self) -> str:
        from gateway import config as gateway_config
        from gateway.room import RoomStore

        config = gateway_config.load(self.deployment / "gateway.toml")
        room = RoomStore(config.room_db)  # where the gateway looks tokens up
        try:
            token: str = room.create_token("scenario runner", "viewer")
        finally:
            room.close()
        return token

    def start(self) -> None:
        if self.broker is not None:
            self.broker.start()
        if self.gateway is not None:
            self.gateway.start()

    def close(self) -> None:
        if self.gateway is not None:
            processes.stop_process(self.gateway.process)
        if self.broker is not None:
            self.broker.stop()

    def gateway_up(self) -> bool:
        return self.gateway is None or self.gateway.running()

    # -- what events do; each blocks, so the runner calls them in a thread --------------

    def broker_stop(self) -> None:
        assert self.broker is not None
        self.broker.stop()

    def broker_start(self) -> None:
        assert self.broker is not None
        self.broker.start()

    def broker_restart(self) -> None:
        assert self.broker is not None
        self.broker.restart()

    def gateway_kill(self) -> None:
        assert self.gateway is not None
        self.gateway.kill()

    def gateway_start(self) -> None:
        assert self.gateway is not None
        self.gateway.start()

    async def run(self, name: str) -> None:
        await asyncio.to_thread(getattr(self, name))
