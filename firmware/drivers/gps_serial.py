"""The unit's GPS from an NMEA receiver on a serial port, with pyserial.

`SerialNmeaSource(port, baud)`: `open()`, then `read()` in the runtime's loop, then
`close()`. The bytes become lines here; the lines become fixes in `NmeaAssembler`
(gps_nmea.py, pure and tested without a port). Imports pyserial, gps_nmea, firmware.errors
and the standard library.

Receivers send each epoch as one burst of sentences, then stay quiet until the next one.
`read()` returns a fix as soon as the next epoch's first sentence arrives, or when the line
has been quiet for `quiet_s` after a burst (the port's read timeout): so a fix is handed
over about `quiet_s` after its last sentence. A receiver that pauses longer than `quiet_s`
inside a burst has that epoch split in two fixes with the same time; raise `quiet_s` for
it. On a Pi, the GPIO UART is /dev/serial0 (docs/gps.md has the wiring).
"""

from __future__ import annotations

import time

import serial

from firmware.core.fix import Fix
from firmware.drivers.gps_nmea import MAX_LINE_CHARS, NmeaAssembler, NmeaCounts
from firmware.errors import GpsError

QUIET_SECONDS = 0.2
# read() gives up after this long even if bytes keep coming (a wrong baud rate gives
# a stream of garbage that never completes an epoch), so the runtime's loop goes on.
READ_BUDGET_SECONDS = 2.0


class SerialNmeaSource:
    """Fixes from an NMEA receiver on a serial port."""

    def __init__(self, port: str, baud: int = 9600, *, quiet_s: float = QUIET_SECONDS) -> None:
        self.port = port
        self.baud = baud
        self.quiet_s = quiet_s
        self._assembler = NmeaAssembler()
        self._serial: serial.Serial | None = None
        self._pending = b""  # bytes after the last newline

    @property
    def counts(self) -> NmeaCounts:
        """The assembler's sentence counters: ok, bad checksum, unparsable, unknown type."""
        return self._assembler.counts

    def open(self) -> None:
        """Open the port (8N1, no flow control); raises GpsError naming it when it cannot."""
        self.close()
        try:
            self._serial = serial.Serial(self.port, baudrate=self.baud, timeout=self.quiet_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise GpsError(f"GPS serial port {self.port} at {self.baud} baud: {exc}") from exc

    def read(self) -> Fix | None:
        """The next completed epoch, or None when none completed (quiet line, or garbage)."""
        port = self._serial
        if port is None:
            raise GpsError(f"GPS serial port {self.port} is not open")
        deadline = time.monotonic() + READ_BUDGET_SECONDS
        while True:
            fix = self._feed_complete_lines()
            if fix is not None:
                return fix
            if time.monotonic() > deadline:
                return None
            try:
                # Waits up to quiet_s for the first byte, then takes what has arrived.
                chunk = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                raise GpsError(f"GPS serial port {self.port}: {exc}") from exc
            if not chunk:
                # The line went quiet: the burst is over, unless it stopped mid-sentence.
                return None if self._pending else self._assembler.flush()
            self._pending += chunk

    def close(self) -> None:
        """Close the port; safe to call twice. A half-received epoch is dropped."""
        port, self._serial = self._serial, None
        self._pending = b""
        self._assembler.flush()
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                raise GpsError(f"GPS serial port {self.port}: close: {exc}") from exc

    def _feed_complete_lines(self) -> Fix | None:
        """Feed the buffered complete lines until one completes an epoch."""
        while True:
            line, newline, rest = self._pending.partition(b"\n")
            if not newline:
                if len(self._pending) > MAX_LINE_CHARS:  # no newline in sight: noise
                    self._pending = b""
                    return self._assembler.feed(line.decode("ascii", "replace"))
                return None
            self._pending = rest
            fix = self._assembler.feed(line.decode("ascii", "replace"))
            if fix is not None:
                return fix
