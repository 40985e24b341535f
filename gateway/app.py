"""`balise gateway`: the one service between the broker and the command room.

The module that chooses the concrete parts: the SQLite store, the paho link
(two MQTT sessions: the bulk and the alarm lane), the live state. One asyncio
TaskGroup with named tasks; each lane's ingest pipeline runs on its own thread
(paho and sqlite3 are blocking) and a failure there stops the whole service
with a non-zero exit, so systemd restarts it and the broker redelivers what
was not committed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from gateway import config as gateway_config
from gateway import console, pauses
from gateway.api import ApiContext, create_app
from gateway.bulk import BulkLane, run_bulk
from gateway.errors import GatewayError
from gateway.ingest import Ingest, IngestMetrics, command_ids
from gateway.link import GatewayLink
from gateway.mqtt import Lane, run_ingest
from gateway.pauses import GcPauses
from gateway.precedence import AlarmGate
from gateway.room import RoomStore
from gateway.state import Assignment, LiveState
from protocol import status

log = logging.getLogger("balise.gateway")

TICK_SECONDS = 1.0
PURGE_EVERY_SECONDS = 3600.0
# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
# The alarm lane's threads wake for a few ms of work beside busy bulk threads; each step of
# an SOS waits for a switch, and there are several steps (docs/benchmarks.md, measured).
GIL_SWITCH_SECONDS = 0.001
# The bulk lane commits its batches in transactions of at most this many records,
# so that an alarm lane's write waits for one of them at most (a few ms).
BULK_TRANSACTION_RECORDS = 250


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, help="gateway.toml, written by `balise provision`"
    )
    parser.add_argument("--db", metavar="PATH", help="the SQLite store (overrides the config)")
    parser.add_argument(
        "--http", metavar="HOST:PORT", help="the API's address (overrides the config)"
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    config = gateway_config.load(args.config)
    if args.db:
        config = _replace(config, db=str(Path(args.db)))
    if args.http:
        host, port = gateway_config.parse_host_port(args.http, "--http")
        config = _replace(config, http_host=host, http_port=port)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    return asyncio.run(Gateway(config).serve())


def _replace(
    config: gateway_config.GatewayConfig, **changes: object
) -> gateway_config.GatewayConfig:
    from dataclasses import replace

    return replace(config, **changes)  # type: ignore[arg-type]


class Gateway:
    def __init__(self, config: gateway_config.GatewayConfig) -> None:
        from gateway.store.sqlite import SqliteStore

        self.config = config
        self.store = SqliteStore(config.db)
        self.room = RoomStore(config.room_db)
        self.state = LiveState(config.heartbeat_s, config.grace_s, fleet=config.fleet)
        self.state.apply(self.store.latest())
        self._restore_assignments()
        self.gate = AlarmGate()
        self.link = GatewayLink(config, self.gate)
        self._cmd_ids = command_ids()

        def lane_ingest(**lane: Any) -> Ingest:
            return Ingest(
                self.store,
                self.state,
                self.link.send_command,
                config.max_future_s,
                cmd_ids=self._cmd_ids,
                **lane,
            )

        self.ingests = {
            **{
                bulk.name: lane_ingest(
                    transaction_records=BULK_TRANSACTION_RECORDS,
                    checkpoint=self.gate.yield_to_alarms,
                )
                for bulk in self.link.bulk
            },
            self.link.alarm.name: lane_ingest(urgent=True),
        }
        self.stopping = threading.Event()
        self.gc_pauses = GcPauses()
        self.context = ApiContext(
            config=config,
            state=self.state,
            store=self.store,
            room=self.room,
            send_command=self.link.send_command,
            command_id=self.command_id,
            metrics=lambda: IngestMetrics.total(i.metrics for i in self.ingests.values()),
            mqtt_connected=self.link.is_connected,
            alarms_pending=self.gate.pending,
            gc_pauses=self.gc_pauses,
            lane_received=lambda: {name: i.metrics.received for name, i in self.ingests.items()},
        )
        self.app = create_app(self.context)
        console.mount(self.app)
        self.hub = self.app.state.hub
        self.server = _Server(
            uvicorn.Config(
                self.app,
                host=config.http_host,
                port=config.http_port,
                log_level="warning",
                lifespan="off",
                ws_ping_interval=20.0,
            )
        )

    def command_id(self) -> int:
        return next(self._cmd_ids)

    def _restore_assignments(self) -> None:
        """Assignments survive a restart; one the unit has since accepted shows accepted."""
        for incident, unit, cmd_id, sent_ms, by in self.room.assignments():
            assignment = Assignment(str(incident), cmd_id, sent_ms, by)
            if self.state.assign(unit, assignment):
                current = self.state.units[unit]
                if current.status == status.EN_ROUTE and current.incident == str(incident):
                    assignment.accepted_ms = current.status_since_ms

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        try:
            # Bound before the broker connections are made: they take ephemeral ports, and a
            # port chosen free a moment ago (as tests and benches do) may be one of them.
            listening = _listen(self.config.http_host, self.config.http_port)
            # Set up: what lives now lives as long as the process (gateway/pauses.py).
            self.gc_pauses.start()
            self.gc_pauses.frozen = pauses.tune()
            log.debug("garbage collector: %d objects frozen after start-up", self.gc_pauses.frozen)
            self.link.start()
            log.info(
                "gateway: store %s, %d units known, HTTP on http://%s:%d/",
                self.config.db,
                len(self.state.units),
                self.config.http_host,
                self.config.http_port,
            )
            async with asyncio.TaskGroup() as tasks:
                for lane in self.link.lanes:
                    tasks.create_task(self._ingest(lane), name=f"ingest ({lane.name} lane)")
                tasks.create_task(self._tick(), name="staleness")
                tasks.create_task(self._purge(), name="retention")
                tasks.create_task(self.hub.run(self.stopping.is_set), name="live feed")
                tasks.create_task(self._http(listening), name="http")
        except* GatewayError as errors:
            # The first cause, alone: the CLI prints it as one line and exits 2.
            raise errors.exceptions[0] from None
        finally:
            self.gc_pauses.stop()
            self.link.stop()
            self.store.close()
            self.room.close()
        return 0

    def stop(self) -> None:
        self.stopping.set()
        self.server.should_exit = True
        self.link.wake()

    async def _http(self, listening: socket.socket) -> None:
        await self.server.serve(sockets=[listening])
        if not self.server.started:
            raise gateway_config.ConfigError(
                f"http: cannot listen on {self.config.http_host}:{self.config.http_port}"
            )

    async def _ingest(self, lane: BulkLane | Lane) -> None:
        work = (
            functools.partial(run_bulk, lane)
            if isinstance(lane, BulkLane)
            else functools.partial(run_ingest, lane)
        )
        try:
            await asyncio.to_thread(
                work, self.ingests[lane.name], self.hub.mark, self.hub.alarm, self.stopping
            )
        finally:
            self.stop()  # one lane ending ends the other, and the service

    async def _tick(self) -> None:
        while not self.stopping.is_set():
            self.hub.mark(self.state.tick(int(time.time() * 1000)))
            await asyncio.sleep(TICK_SECONDS)

    async def _purge(self) -> None:
        keep_ms = int(self.config.retention_days * 86_400_000)
        while not self.stopping.is_set():
            purged = await asyncio.to_thread(self.store.purge, int(time.time() * 1000) - keep_ms)
            if purged:
                log.info(
                    "retention: purged %d records older than %s days",
                    purged,
                    self.config.retention_days,
                )
            for _ in range(int(PURGE_EVERY_SECONDS / TICK_SECONDS)):
                if self.stopping.is_set():
                    return
                await asyncio.sleep(TICK_SECONDS)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        raise gateway_config.ConfigError(
            f"http: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from exc
    return listening


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the gateway's stop() ends it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
