"""The event loop that runs a unit core with real (or fake) drivers.

One thread owns the core. Drivers run on their own threads (paho's network
loop, RPi.GPIO's edge callbacks, the GPS reader) and only post events into a
queue; the loop stamps each with the clock's tick, feeds the core, and
carries out the actions it returns. This is the only place where the core
meets threads, time and hardware.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from firmware.core.clock import MonotonicClock
from firmware.core.unit import BUZZER, LED, MEASURE_HEALTH, PUBLISH, Action, Unit
from firmware.errors import FirmwareError
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)

GPS_IDLE_SECONDS = 0.2
GPS_RETRY_SECONDS = 5.0
MAX_WAIT_SECONDS = 1.0


class Link(Protocol):
    def start(self, will_topic: str, will_payload: bytes) -> None: ...
    def rearm(self, will_topic: str, will_payload: bytes) -> None: ...
    def publish(
        self, topic: str, payload: bytes, qos: int, retain: bool, token: int | None
    ) -> None: ...
    def close(self, timeout_s: float = ...) -> None: ...


class Board(Protocol):
    def start(self) -> None: ...
    def set_led(self, name: str, pattern: str) -> None: ...
    def buzz(self, pattern: str) -> None: ...
    def close(self) -> None: ...


class GpsSource(Protocol):
    def read(self) -> Any: ...


class Runtime:
    """Wires a Unit to its drivers. Build the drivers with `runtime.post` as their event sink."""

    def __init__(
        self,
        unit: Unit,
        clock: MonotonicClock | None = None,
        vitals: Callable[[], dict[str, float | int | None]] | None = None,
        watchdog: Callable[[], None] | None = None,
    ) -> None:
        self.unit = unit
        self.clock = clock or MonotonicClock()
        self.vitals = vitals or (lambda: {})
        self.watchdog = watchdog or (lambda: None)
        # SimpleQueue: put() is safe from a signal handler on the loop's own thread.
        self.events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.link: Link | None = None
        self.board: Board | None = None
        self.handled = 0  # events fed to the core, for tests and health
        self.failed_events = 0

    def post(self, kind: str, value: Any = None) -> None:
        """Thread-safe: hand an event to the loop."""
        self.events.put((kind, value))

    def on_edge(self, pin: str, level: int) -> None:
        # Stamped now, on the driver's thread: a busy loop must not squeeze a
        # press and its release together (the debounce would drop the press).
        self.post("edge", (pin, level, self.clock.ticks()))

    def run(self, link: Link, board: Board, gps: GpsSource | None) -> None:
        """Run until stop() is called; sign off cleanly."""
        self.link, self.board = link, board
        tick = self.clock.ticks()
        board.start()
        self._execute(self.unit.start(tick, int(time.time() * 1000)), tick)
        link.start(*self.unit.will(tick))
        reader = None
        if gps is not None:
            reader = threading.Thread(target=self._read_gps, args=(gps,), name="gps", daemon=True)
            reader.start()
        try:
            while not self.stopping.is_set():
                self._step()
        finally:
            self._sign_off()
            board.close()
            if gps is not None:
                close_gps(gps, reader)

    def stop(self) -> None:
        self.stopping.set()
        self.post("stop")

    # -- the loop ------------------------------------------------------------

    def _step(self) -> None:
        now = self.clock.ticks()
        wait_s = min(MAX_WAIT_SECONDS, max(0.0, (self.unit.next_wakeup_ms(now) - now) / 1000))
        try:
            kind, value = self.events.get(timeout=wait_s)
        except queue.Empty:
            kind, value = "tick", None
        tick = self.clock.ticks()
        try:
            actions = _EVENT_HANDLERS[kind](self, value, tick)
            actions += self.unit.on_tick(tick)
        except ProtocolError as exc:
            # A message the codec refuses must cost that event, not the unit.
            self.failed_events += 1
            log.error("event %s: %s", kind, exc)
            actions = []
        self.handled += 1
        self._execute(actions, tick)
        # A board whose LED thread died leaves the rider blind: let systemd restart us.
        if getattr(self.board, "running", True):
            self.watchdog()

    def _on_edge(self, value: tuple[str, int, int], tick: int) -> list[Action]:
        pin, level, edge_tick = value
        return self.unit.on_button(pin, level, edge_tick)

    def _on_link_up(self, value: None, tick: int) -> list[Action]:
        log.info("link up")
        return self.unit.on_link(True, tick)

    def _on_link_down(self, value: str, tick: int) -> list[Action]:
        log.info("link down: %s", value)
        actions = self.unit.on_link(False, tick)
        if self.link is not None and not self.stopping.is_set():
            self.link.rearm(*self.unit.will(tick))
        return actions

    def _on_puback(self, token: int, tick: int) -> list[Action]:
        return self.unit.on_puback(token, tick)

    def _on_message(self, value: tuple[str, bytes], tick: int) -> list[Action]:
        topic, payload = value
        return self.unit.on_downlink(topic, payload, tick)

    def _on_fix(self, fix: Any, tick: int) -> list[Action]:
        return self.unit.on_fix(fix, tick)

    def _nothing(self, value: Any, tick: int) -> list[Action]:
        return []

    # -- actions -------------------------------------------------------------

    def _execute(self, actions: list[Action], tick: int) -> None:
        for action in actions:
            if action.kind == PUBLISH and self.link is not None:
                self.link.publish(
                    action.topic, action.payload, action.qos, action.retain, action.token
                )
            elif action.kind == LED and self.board is not None:
                self.board.set_led(action.name, action.pattern)
            elif action.kind == BUZZER and self.board is not None:
                self.board.buzz(action.pattern)
            elif action.kind == MEASURE_HEALTH:
                self._execute(self.unit.on_health(tick, **self.vitals()), tick)

    def _sign_off(self) -> None:
        """A clean DISCONNECT suppresses the will, so say "offline" first."""
        if self.link is None:
            return
        tick = self.clock.ticks()
        self._execute(self.unit.sign_off(tick), tick)
        self.link.close()

    def _read_gps(self, gps: GpsSource) -> None:
        read_fixes(gps, self.post, self.stopping)


def read_fixes(gps: GpsSource, post: Callable[[str, Any], None], stopping: threading.Event) -> None:
    """Read `gps` until `stopping`, posting ("fix", fix); a failing source is reopened.

    Runs on a thread of its own: a runtime's GPS reader, or a simulator's
    (`balise sim unit --gps URL`).
    """
    while not stopping.is_set():
        try:
            fix = gps.read()
        except FirmwareError as exc:
            log.warning("GPS: %s; reopening in %.0f s", exc, GPS_RETRY_SECONDS)
            while not stopping.wait(GPS_RETRY_SECONDS) and not _reopened(gps):
                pass
            continue
        except Exception:  # the reader must outlive any driver bug: log it, go on
            log.exception("GPS reader failed; retrying in %.0f s", GPS_RETRY_SECONDS)
            stopping.wait(GPS_RETRY_SECONDS)
            continue
        if fix is None:
            stopping.wait(GPS_IDLE_SECONDS)
        else:
            post("fix", fix)


def close_gps(gps: GpsSource, reader: threading.Thread | None) -> None:
    """Close the source (gpsd socket, serial port) once its reader has stopped reading."""
    if reader is not None:
        reader.join(GPS_RETRY_SECONDS)  # a read returns within its own timeout
    close = getattr(gps, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # stopping anyway: a driver that fails to close must not hang the exit
        log.exception("GPS: closing the source failed")


def _reopened(gps: GpsSource) -> bool:
    """Open a failed source again; False (logged) if it still cannot be.

    A source that raised stays failed until reopened: GpsdSource drops its connection
    (gpsd restarted, or gone), a serial port that went away stays closed. Each is opened
    by its own method; a source with neither (FakeGps) just gets read again.
    """
    reopen = getattr(gps, "connect", None) or getattr(gps, "open", None)
    if reopen is None:
        return True
    try:
        reopen()
    except FirmwareError as exc:
        log.warning("GPS: %s; trying again in %.0f s", exc, GPS_RETRY_SECONDS)
        return False
    log.info("GPS reopened")
    return True


_EVENT_HANDLERS: dict[str, Callable[[Runtime, Any, int], list[Action]]] = {
    "edge": Runtime._on_edge,
    "up": Runtime._on_link_up,
    "down": Runtime._on_link_down,
    "puback": Runtime._on_puback,
    "message": Runtime._on_message,
    "fix": Runtime._on_fix,
    "tick": Runtime._nothing,
    "stop": Runtime._nothing,
}
