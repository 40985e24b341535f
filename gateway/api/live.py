"""The live feed: a snapshot, then alarm frames at once and coalesced deltas, to every console.

Changes come from the ingest threads and the API (`Hub.mark`, thread-safe) as
unit ids, or "incident:<id>". Every `FRAME_SECONDS` the hub takes the ids that
changed since the last frame, renders their views once, and queues the same
frame for every client: at most ten frames a second per client however many
messages arrive, each with the newest view of each changed unit.

Alarms (a status change or an SOS stored, an SOS acknowledged: `Hub.alarm`)
do not wait for that: their units are rendered at once, alone, into an
`alarm` frame that goes to every client ahead of any delta still queued for
it. A view overtaken that way is older than the alarm's: each view carries the
unit's `rev`, and a console keeps the view with the higher one.

A client whose queue is full (its socket is not draining) is dropped rather
than slowing everyone; it reconnects and gets a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable

from fastapi import WebSocket, WebSocketDisconnect

from gateway.api.auth import websocket_principal
from gateway.api.context import ApiContext

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.1
# A delta renders this many unit views at a time, and waits at most this long, polling,
# for an alarm on its way (gateway/precedence.py) before each slice.
VIEWS_PER_SLICE = 200
ALARM_PAUSE_SECONDS = 0.2
ALARM_POLL_SECONDS = 0.002
PING_SECONDS = 5.0
CLIENT_QUEUE_FRAMES = 100  # ten seconds of frames
INCIDENT_PREFIX = "incident:"
# Queue order of a client's frames: the close signal, then alarms, then deltas; FIFO within each.
CLOSE, ALARM, DELTA = 0, 1, 2


def _now_ms() -> int:
    return int(time.time() * 1000)


class Client:
    def __init__(self) -> None:
        self.queue: asyncio.PriorityQueue[tuple[int, int, str | None]] = asyncio.PriorityQueue(
            CLIENT_QUEUE_FRAMES
        )
        self.dropped = False
        self._order = itertools.count()

    def offer(self, frame: str, alarm: bool = False) -> None:
        try:
            self.queue.put_nowait((ALARM if alarm else DELTA, next(self._order), frame))
        except asyncio.QueueFull:
            self.dropped = True
            self.queue = asyncio.PriorityQueue(1)
            self.queue.put_nowait((CLOSE, 0, None))  # wakes the sender, which closes the socket

    async def next_frame(self, timeout_s: float) -> str | None:
        """The next frame to send (None: close); TimeoutError after `timeout_s` with none."""
        _, _, frame = await asyncio.wait_for(self.queue.get(), timeout_s)
        return frame


class Hub:
    def __init__(self, context: ApiContext) -> None:
        self.context = context
        self.clients: set[Client] = set()
        self.frames_sent = 0
        self.alarm_frames_sent = 0
        self._dirty: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def mark(self, ids: set[str]) -> None:
        """Note changed units/incidents for the next delta; callable from any thread."""
        self._call(self._dirty.update, ids)

    def alarm(self, unit_ids: set[str]) -> None:
        """Send these units to every client now, in an alarm frame; callable from any thread."""
        self._call(self._send_alarm, unit_ids)

    def _call(self, function: Callable[[set[str]], None], ids: set[str]) -> None:
        loop = self._loop
        if loop is None or not ids:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: the gateway is stopping
            loop.call_soon_threadsafe(function, ids)

    def _send_alarm(self, unit_ids: set[str]) -> None:
        if not self.clients:
            return
        frame = self._frame("alarm", unit_ids, [])
        for client in list(self.clients):
            client.offer(frame, alarm=True)
        self.alarm_frames_sent += 1

    async def run(self, stopping: Callable[[], bool] = lambda: False) -> None:
        self._loop = asyncio.get_running_loop()
        while not stopping():
            await asyncio.sleep(FRAME_SECONDS)
            if not self._dirty:
                continue
            await self._after_alarms()
            dirty, self._dirty = self._dirty, set()
            if self.clients:
                frame = await self.delta(dirty)
                for client in list(self.clients):
                    client.offer(frame)
                self.frames_sent += 1

    async def _after_alarms(self) -> None:
        """Wait while an alarm is on its way to the feed (at most ALARM_PAUSE_SECONDS)."""
        deadline = time.monotonic() + ALARM_PAUSE_SECONDS
        while self.context.alarms_pending() and time.monotonic() < deadline:
            await asyncio.sleep(ALARM_POLL_SECONDS)

    async def delta(self, ids: set[str]) -> str:
        """The changed units' views, rendered a slice at a time: between two slices the loop
        sends the alarm frames that came meanwhile, and waits for alarms on their way."""
        incidents = [int(i[len(INCIDENT_PREFIX) :]) for i in ids if i.startswith(INCIDENT_PREFIX)]
        units = sorted(i for i in ids if not i.startswith(INCIDENT_PREFIX))
        room = self.context.room
        now = _now_ms()
        views = []
        for start in range(0, len(units), VIEWS_PER_SLICE):
            if start:
                await asyncio.sleep(0)
                await self._after_alarms()
            views += self.context.state.views(now, units[start : start + VIEWS_PER_SLICE])
        found = [inc for i in sorted(incidents) for inc in room.incidents(i)]
        return self._encode("delta", now, views, found)

    def _frame(self, kind: str, units: set[str], incidents: list[dict[str, object]]) -> str:
        now = _now_ms()
        return self._encode(kind, now, self.context.state.views(now, units), incidents)

    @staticmethod
    def _encode(
        kind: str, now: int, views: list[dict[str, object]], incidents: list[dict[str, object]]
    ) -> str:
        return json.dumps(
            {"type": kind, "t": now, "units": views, "incidents": incidents},
            separators=(",", ":"),
        )

    def snapshot(self) -> str:
        now = _now_ms()
        return json.dumps(
            {
                "type": "snapshot",
                "t": now,
                "units": self.context.state.views(now),
                "incidents": self.context.room.incidents(),
            },
            separators=(",", ":"),
        )

    async def serve(self, websocket: WebSocket) -> None:
        if websocket_principal(websocket) is None:
            await websocket.close(code=4401, reason="login required")
            return
        await websocket.accept()
        client = Client()
        self.clients.add(client)
        receiver = asyncio.create_task(_drain(websocket))
        try:
            await websocket.send_text(self.snapshot())
            while not receiver.done():
                try:
                    frame = await client.next_frame(PING_SECONDS)
                except TimeoutError:
                    frame = json.dumps({"type": "ping", "t": _now_ms()})
                if frame is None:
                    log.warning("live feed: a client fell behind; dropped it")
                    await websocket.close(code=4408, reason="too slow: reconnect")
                    return
                await websocket.send_text(frame)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away
        finally:
            self.clients.discard(client)
            receiver.cancel()


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError):
        return
