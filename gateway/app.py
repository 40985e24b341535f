"""`balise gateway`: the one service between the broker and the command room.

The module that chooses the concrete parts: the SQLite store, the paho link,
the live state. One asyncio TaskGroup with named tasks; the ingest pipeline
runs on its own thread (paho and sqlite3 are blocking) and a failure there
stops the whole service with a non-zero exit, so systemd restarts it and the
broker redelivers what was not committed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import threading
import time
from pathlib import Path

from gateway import config as gateway_config
from gateway.ingest import Ingest
from gateway.mqtt import GatewayLink, run_ingest
from gateway.state import LiveState

log = logging.getLogger("balise.gateway")

TICK_SECONDS = 1.0
PURGE_EVERY_SECONDS = 3600.0


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
        self.state = LiveState(config.heartbeat_s, config.grace_s)
        self.state.apply(self.store.latest())
        self.link = GatewayLink(config)
        self.ingest = Ingest(self.store, self.state, self.link.send_command, config.max_future_s)
        self.stopping = threading.Event()
        self.changes: asyncio.Queue[set[str]] = asyncio.Queue()

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        self.link.start()
        log.info("gateway: store %s, %d units known", self.config.db, len(self.state.units))
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._ingest(loop), name="ingest")
                tasks.create_task(self._tick(), name="staleness")
                tasks.create_task(self._purge(), name="retention")
        finally:
            self.link.stop()
            self.store.close()
        return 0

    def stop(self) -> None:
        self.stopping.set()
        self.link.inbox.put(None)

    async def _ingest(self, loop: asyncio.AbstractEventLoop) -> None:
        def changed(unit_ids: set[str]) -> None:
            loop.call_soon_threadsafe(self.changes.put_nowait, unit_ids)

        await asyncio.to_thread(run_ingest, self.link, self.ingest, changed, self.stopping)
        self.stopping.set()

    async def _tick(self) -> None:
        while not self.stopping.is_set():
            changed = self.state.tick(int(time.time() * 1000))
            if changed:
                self.changes.put_nowait(changed)
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
