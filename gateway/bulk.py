"""The bulk lane in a process of its own: its MQTT session and the decoding.

Positions are the volume, and in one Python process the bulk lane's paho
network thread, its decoding and the store, the live state, the alarm lane
and the live feed all take turns on one GIL (docs/benchmarks.md: the drain
ran at a quarter of a bare subscriber, and an SOS waited its turn at every
step). So the bulk lane's session runs in a worker process, on one thread
with no locks: a select() loop drives paho by its external-loop API (reading
every packet that has arrived per wakeup, writing the PUBACKs of a whole
batch at once), decodes and validates each batch with `protocol/` (the
`Decoder`) and sends the `Decoded` batch over a pipe. The gateway's process
stores it, applies it to the live state, acknowledges on `cmd` and answers
`DONE`; only then does the worker PUBACK that batch's messages to the broker,
in the order they came ([MQTT-4.6.0-2]). The broker's in-flight window
(`max_inflight_messages`) bounds what is sent and not yet committed.

Exactly once and crash safety are unchanged: a message is PUBACKed only after
its record is committed; whatever was in the pipe when either process died is
redelivered by the broker and deduplicated by (unit, seq). The worker ends
with the gateway: on `STOP`, when the pipe closes (the gateway exited or was
killed: the pipe reads end-of-file), and by the kernel's parent-death signal.
If the worker dies, the gateway's bulk thread raises and the service exits
non-zero, like a failure of any lane.

Several workers (`[ingest] bulk_workers`): one process, one MQTT session and
one bulk thread in the gateway each (`bulk`, `bulk1`, …; client ids
`<client_id>`, `<client_id>-bulk1`, …), sharing the bulk subscription
(`$share/<client_id>/…`), so paho's per-message work runs on several cores.
The broker gives each message to one of them. It also keeps queuing a share
for a session that is offline, so when `bulk_workers` is lowered the first
worker first takes over the sessions no worker keeps any more (`retire`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import select
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from gateway.config import MAX_BULK_WORKERS, GatewayConfig
from gateway.errors import GatewayError
from gateway.ingest import Decoded, Decoder, Incoming, Ingest
from gateway.mqtt import (
    ALARM_CLIENT_SUFFIX,
    BULK_KINDS,
    RECONNECT_MAX_SECONDS,
    RECONNECT_MIN_SECONDS,
    Lane,
    bulk_client_id,
    bulk_lane_name,
    bulk_share,
    every_filter,
)

log = logging.getLogger("gateway.mqtt")

DONE = "done"  # gateway -> worker: the oldest batch sent is committed
STOP = "stop"  # gateway -> worker: disconnect and exit
CONNECTED = "connected"  # worker -> gateway: (CONNECTED, True | False)
# A batch goes to the gateway once the socket has nothing more to read, or at this size
# (the broker's in-flight window, max_inflight_messages, is 1000: a batch never waits for more).
MAX_BATCH = 500
SELECT_SECONDS = 1.0
# A retiring session is drained once nothing came for this long after its filters were dropped
# (the broker sends what it holds as fast as the PUBACKs return).
RETIRE_QUIET_SECONDS = 1.0
# ... and ended anyway after this long (it keeps receiving: a filter it was not told to drop).
RETIRE_MAX_SECONDS = 120
STOP_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1


class BulkWorkerDied(GatewayError):
    """The bulk lane's worker process ended while the gateway was running."""


class BulkLane:
    """The gateway's side of the bulk lane: the worker process and the pipe to it."""

    def __init__(self, config: GatewayConfig, index: int = 0) -> None:
        self.name = bulk_lane_name(index)
        self.client_id = bulk_client_id(config.client_id, index)
        self.connected = threading.Event()
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._conn, child = context.Pipe()
        self._child = child
        level = logging.getLogger().getEffectiveLevel()
        self._process = context.Process(
            target=_worker_main,
            args=(config, index, child, level),
            name=f"{self.client_id} {self.name} lane",
            daemon=True,
        )
        self._send_lock = threading.Lock()  # DONE from the bulk thread, STOP from the loop

    def start(self) -> None:
        self._process.start()
        self._child.close()

    def receive(self) -> Decoded | None:
        """The next decoded batch; None once the worker has ended."""
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                return None
            if isinstance(message, Decoded):
                return message
            kind, value = message
            if kind == CONNECTED:
                (self.connected.set if value else self.connected.clear)()

    def committed(self) -> None:
        """The oldest batch received is stored: the worker may PUBACK it."""
        self._send(DONE)

    def wake(self) -> None:
        """Ask the worker to disconnect and exit (the bulk thread then sees the pipe close)."""
        self._send(STOP)

    def stop(self) -> None:
        if self._process.pid is None:  # never started
            self._conn.close()
            return
        self.wake()
        self._process.join(STOP_SECONDS)
        if self._process.is_alive():
            log.warning("bulk lane's worker did not stop in %s s: killed", STOP_SECONDS)
            self._process.kill()
            self._process.join()
        self._conn.close()

    def exitcode(self) -> int | None:
        """How the worker ended (waits briefly: its pipe closes a moment before it is reaped)."""
        self._process.join(STOP_SECONDS)
        return self._process.exitcode

    def _send(self, message: str) -> None:
        # OSError: the worker has gone, nothing to PUBACK or stop.
        with self._send_lock, contextlib.suppress(OSError):
            self._conn.send(message)


def run_bulk(
    lane: BulkLane,
    ingest: Ingest,
    on_changes: Callable[[set[str]], None],
    on_alarms: Callable[[set[str]], None],
    stopping: threading.Event,
) -> None:
    """The gateway's bulk thread: commit each decoded batch, report it, let the worker PUBACK."""
    while True:
        decoded = lane.receive()
        if decoded is None:
            if stopping.is_set():
                return
            code = lane.exitcode()
            raise BulkWorkerDied(f"the bulk lane's worker process ended (exit code {code})")
        changes = ingest.commit(decoded)
        changes.hand_over(on_changes, on_alarms)
        lane.committed()


# -- the worker process ------------------------------------------------------


def _worker_main(
    config: GatewayConfig, index: int, conn: multiprocessing.connection.Connection, level: int
) -> None:
    _die_with_parent()
    # Below the gateway's process, where alarms are stored and sent to the consoles:
    # under full load a core goes to an SOS first (raising one's own nice needs no privilege).
    os.nice(config.bulk_nice)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the gateway stops us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr
    )
    decoder = Decoder(config.max_future_s)
    if index == 0:
        for client_id, base, why in orphans(config):
            if not retire(config, client_id, base, why, conn, decoder):
                return
    lane = Lane(
        bulk_lane_name(index),
        config,
        bulk_client_id(config.client_id, index),
        BULK_KINDS,
        legacy=every_filter(config.client_id, config.shared_group),
        share=bulk_share(config),
    )
    Worker(lane, conn, decoder).run()


def orphans(config: GatewayConfig) -> list[tuple[str, str, str]]:
    """(client id, its gateway's client id, why) of each session worker 0 takes over and ends:
    the bulk sessions above `bulk_workers`, and every session of each gateway in `adopt`."""
    own, why = config.client_id, f"bulk_workers is {config.bulk_workers}"
    sessions = [
        (bulk_client_id(own, index), own, why)
        for index in range(config.bulk_workers, MAX_BULK_WORKERS)
    ]
    for gateway in config.adopt:
        ids = [gateway + ALARM_CLIENT_SUFFIX]
        ids += [bulk_client_id(gateway, index) for index in range(MAX_BULK_WORKERS)]
        sessions += [(client_id, gateway, f"adopted from {gateway}") for client_id in ids]
    return sessions


def retire(
    config: GatewayConfig,
    client_id: str,
    base: str,
    why: str,
    conn: multiprocessing.connection.Connection,
    decoder: Decoder,
) -> bool:
    """End the session `client_id` (of the gateway `base`) once drained: False on STOP.

    The broker keeps queuing a shared subscription's share for a persistent session that is
    offline (mosquitto does, measured: docs/gateway.md), so a session no worker connects any
    more would hold its share of the positions for ever. Its filters are dropped, what it holds
    is drained into the store like any batch, then a clean connection ends it.
    """
    legacy = every_filter(base, config.shared_group)
    draining = Worker(Lane("retiring", config, client_id, (), legacy=legacy), conn, decoder)
    drained = draining.drain()
    if drained is None:
        return False
    if drained:
        log.warning(
            "session %s (%s) held %d messages: stored; session ended", client_id, why, drained
        )
    ending = Worker(Lane("ending", config, client_id, (), ending=True), conn, decoder)
    return ending.drain() is not None


def _die_with_parent() -> None:
    """Linux: the kernel kills this process if the gateway's dies (kill -9 included)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the closed pipe ends the worker


class Worker:
    """One thread, one select() loop: the broker's socket and the pipe to the gateway."""

    def __init__(self, lane: Lane, conn: multiprocessing.connection.Connection, decoder: Decoder):
        self.lane = lane
        self.client = lane.client
        self.conn = conn
        self.decoder = decoder
        self.batch: list[Incoming] = []
        self.sent: deque[list[Incoming]] = deque()  # batches sent, oldest first, not yet DONE
        self.reported: bool | None = None
        self.reporting = True  # tell the gateway when the session is up or down
        self.sending = 0  # messages sent to the gateway since drain() last looked
        self.delay = 0.0  # reconnection backoff
        self.retry_at = 0.0
        lane.deliver = self.batch.append
        # Packets queue until loop_write (one pass per wakeup), not one TLS write each.
        self.client.on_socket_register_write = lambda client, userdata, sock: None

    def run(self) -> None:
        self.lane.prepare()
        while not self._step(SELECT_SECONDS):
            pass

    def drain(self) -> int | None:
        """For a session no worker keeps (gateway.bulk.retire): connect, take what the broker
        holds for it until quiet, disconnect. The number of messages, or None on STOP."""
        self.reporting = False  # the gateway's lane is not connected yet
        self.lane.prepare()
        drained = 0
        quiet_since = started = time.monotonic()
        while True:
            if self._step(RETIRE_QUIET_SECONDS / 4):
                return None
            now = time.monotonic()
            drained += self.sending
            lane = self.lane
            if now - started > RETIRE_MAX_SECONDS and not self.sent and not self.batch:
                # Still receiving: a filter none of balise's layouts had (another group's?).
                log.error(
                    "session %s still receiving after %d s: ended; what the broker held for it "
                    "from now on is lost",
                    lane.client_id,
                    RETIRE_MAX_SECONDS,
                )
            elif self.sending or self.sent or not lane.unsubscribed.is_set():
                # Quiet counts from the last PUBACK: the broker sends more as they return.
                self.sending = 0
                quiet_since = now
                continue
            elif not lane.connected.is_set() or (
                lane.session_present and now - quiet_since < RETIRE_QUIET_SECONDS
            ):
                continue
            self.client.disconnect()
            self.client.loop_write()
            return drained

    def _step(self, timeout: float) -> bool:
        """One wakeup: (re)connect, or read, send a batch, PUBACK, write. True on STOP."""
        sock: Any = self.client.socket()
        if sock is None:  # not connected: (re)connect, with backoff, watching the pipe
            now = time.monotonic()
            if now >= self.retry_at:
                self.delay, self.retry_at = self._connect(self.delay, now)
                return False
            return self._pipe(min(timeout, self.retry_at - now))
        self._report(self.lane.connected.is_set())
        wlist = [sock] if self.client.want_write() else []
        readable, _, _ = select.select([sock, self.conn], wlist, [], timeout)
        if self.conn in readable and self._pipe(0):
            return True
        if sock in readable:
            self._read(sock)
        if self.batch:
            self._send_batch()
        if self.client.socket() is not None:
            self.client.loop_write()
            self.client.loop_misc()
        return False

    def _connect(self, delay: float, now: float) -> tuple[float, float]:
        self._report(False)
        try:
            self.client.reconnect()
        except OSError as exc:
            delay = min(max(delay * 2, RECONNECT_MIN_SECONDS), RECONNECT_MAX_SECONDS)
            log.warning("bulk lane cannot reach the broker (%s); retrying in %s s", exc, delay)
            return delay, now + delay
        return 0.0, now

    def _read(self, sock: Any) -> None:
        """Every packet that has arrived, up to a batch (TLS may hold decrypted bytes)."""
        pending = getattr(sock, "pending", lambda: 0)
        while len(self.batch) < MAX_BATCH:
            if self.client.loop_read() or self.client.socket() is None:
                self._report(False)
                return
            if not pending() and not select.select([sock], [], [], 0)[0]:
                return

    def _send_batch(self) -> None:
        batch, self.batch = self.batch, []
        self.lane.deliver = self.batch.append
        self.conn.send(self.decoder.decode(batch))
        self.sent.append(batch)
        self.sending += len(batch)

    def _pipe(self, timeout: float) -> bool:
        """Handle what the gateway sent; True on STOP or once the gateway has gone."""
        try:
            while self.conn.poll(timeout):
                timeout = 0
                message = self.conn.recv()
                if message == DONE:
                    self.lane.ack(self.sent.popleft())
                elif message == STOP:
                    self.client.disconnect()
                    self.client.loop_write()  # the DISCONNECT: the broker keeps the session
                    return True
        except (EOFError, OSError):
            return True  # the gateway has gone: nothing more is committed, nothing PUBACKed
        return False

    def _report(self, connected: bool) -> None:
        if self.reporting and connected != self.reported:
            self.reported = connected
            self.conn.send((CONNECTED, connected))
