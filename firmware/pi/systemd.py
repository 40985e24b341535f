"""systemd's notify protocol: READY, STOPPING and the watchdog keep-alive.

The protocol is one datagram to the socket named in $NOTIFY_SOCKET (see
sd_notify(3)); under systemd with `WatchdogSec=`, systemd restarts the unit
when the keep-alives stop, which is what catches a hung event loop. Outside
systemd (no $NOTIFY_SOCKET) every call does nothing.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        environ = dict(os.environ if environ is None else environ)
        address = environ.get("NOTIFY_SOCKET", "")
        # An abstract socket is written with a leading "@" [sd_notify(3)].
        self.address = "\0" + address[1:] if address.startswith("@") else address
        watchdog_usec = int(environ.get("WATCHDOG_USEC", "0") or 0)
        # Ping at twice the rate systemd requires.
        self.interval_s = watchdog_usec / 2e6 if watchdog_usec else None
        self._last_ping = 0.0

    def notify(self, state: str) -> None:
        if not self.address:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode(), self.address)

    def ready(self) -> None:
        self.notify("READY=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def watchdog(self) -> None:
        """Call from the event loop; pings when due."""
        if self.interval_s is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.interval_s:
            self._last_ping = now
            self.notify("WATCHDOG=1")
