"""Millisecond ticks, named after MicroPython's time.ticks_ms.

The core never reads a clock: every event carries its tick. Runtimes read
ticks from `MonotonicClock` (CPython) or time.ticks_ms (MicroPython); tests use
`FakeClock` and move time by hand. Ticks here do not wrap (CPython ints are
unbounded; the Pico runtime converts its wrapping ticks to a running count).
"""


def ticks_diff(later, earlier):
    """Milliseconds from `earlier` to `later`."""
    return later - earlier


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start_ms=0):
        self.now_ms = start_ms

    def ticks(self):
        return self.now_ms

    def advance(self, seconds):
        self.now_ms += round(seconds * 1000)
        return self.now_ms


class MonotonicClock:
    """The real clock on CPython: monotonic milliseconds."""

    def __init__(self):
        import time

        self._monotonic_ns = time.monotonic_ns

    def ticks(self):
        return self._monotonic_ns() // 1000000
