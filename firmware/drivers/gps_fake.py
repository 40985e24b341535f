"""A scripted GPS source for tests and simulators, with the real sources' read() and close().

    gps = FakeGps()
    gps.feed(Fix(time_ms=T0, mode=MODE_3D, lat=36.8, lon=10.18))
    gps.feed("$GPGGA,...*7D")      # NMEA text, one or more lines
    gps.read()  # -> the Fix, then the NMEA epoch's Fix, then None

NMEA goes through the serial driver's `NmeaAssembler`, so a script sees what a receiver on
the serial port would give; like the quiet line after a receiver's burst, a read() with
nothing queued completes the pending NMEA epoch. Imports gps_nmea and firmware.core.fix.
"""

from __future__ import annotations

from collections import deque

from firmware.core.fix import Fix
from firmware.drivers.gps_nmea import NmeaAssembler, NmeaCounts


class FakeGps:
    """Hands out, in order, the fixes and NMEA epochs it was fed."""

    def __init__(self) -> None:
        self.closed = False
        self._queue: deque[Fix] = deque()
        self._assembler = NmeaAssembler()

    @property
    def counts(self) -> NmeaCounts:
        """Sentence counters of the NMEA fed so far."""
        return self._assembler.counts

    def feed(self, fix_or_nmea: Fix | str) -> None:
        """Queue a Fix as it is, or NMEA text (one or more lines) through the assembler."""
        if isinstance(fix_or_nmea, Fix):
            self._queue_fix(self._assembler.flush())  # keep the order things were fed in
            self._queue.append(fix_or_nmea)
            return
        for line in fix_or_nmea.splitlines():
            self._queue_fix(self._assembler.feed(line))

    def read(self) -> Fix | None:
        """The next fix fed, or None when there is none."""
        if not self._queue:
            self._queue_fix(self._assembler.flush())
        return self._queue.popleft() if self._queue else None

    def close(self) -> None:
        self.closed = True

    def _queue_fix(self, fix: Fix | None) -> None:
        if fix is not None:
            self._queue.append(fix)
