"""The live feed: a snapshot, then coalesced deltas, to every connected console.

Changes come from the ingest thread and the API (`Hub.mark`, thread-safe) as
unit ids, or "incident:<id>". Every `FRAME_SECONDS` the hub takes the ids that
changed since the last frame, renders their views once, and queues the same
frame for every client: at most ten frames a second per client however many
messages arrive, each with the newest view of each changed unit. A client whose
queue is full (its socket is not draining) is dropped rather than slowing
everyone; it reconnects and gets a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from fastapi import WebSocket, WebSocketDisconnect

from gateway.api.auth import websocket_principal
from gateway.api.context import ApiContext

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.1
PING_SECONDS = 5.0
CLIENT_QUEUE_FRAMES = 100  # ten seconds of frames
INCIDENT_PREFIX = "incident:"


def _now_ms() -> int:
    return int(time.time() * 1000)


class Client:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(CLIENT_QUEUE_FRAMES)
        self.dropped = False

    def offer(self, frame: str) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped = True
            self.queue = asyncio.Queue(1)
            self.queue.put_nowait(None)  # wakes the sender, which closes the socket


class Hub:
    def __init__(self, context: ApiContext) -> None:
        self.context = context
        self.clients: set[Client] = set()
        self.frames_sent = 0
        self._dirty: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def mark(self, ids: set[str]) -> None:
        """Note changed units/incidents; callable from any thread."""
        loop = self._loop
        if loop is None or not ids:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: the gateway is stopping
            loop.call_soon_threadsafe(self._dirty.update, ids)

    async def run(self, stopping: Callable[[], bool] = lambda: False) -> None:
        self._loop = asyncio.get_running_loop()
        while not stopping():
            await asyncio.sleep(FRAME_SECONDS)
            if not self._dirty:
                continue
            dirty, self._dirty = self._dirty, set()
            if self.clients:
                frame = self.delta(dirty)
                for client in list(self.clients):
                    client.offer(frame)
                self.frames_sent += 1

    def delta(self, ids: set[str]) -> str:
        incidents = [int(i[len(INCIDENT_PREFIX) :]) for i in ids if i.startswith(INCIDENT_PREFIX)]
        units = [i for i in ids if not i.startswith(INCIDENT_PREFIX)]
        now = _now_ms()
        room = self.context.room
        return json.dumps(
            {
                "type": "delta",
                "t": now,
                "units": self.context.state.views(now, units),
                "incidents": [inc for i in sorted(incidents) for inc in room.incidents(i)],
            },
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
                    frame = await asyncio.wait_for(client.queue.get(), PING_SECONDS)
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
