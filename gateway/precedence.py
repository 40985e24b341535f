"""Alarms first: bulk work steps aside while an alarm is on its way to the consoles.

The two lanes (gateway/mqtt.py) run on threads of one process, and Python
gives the GIL to every runnable thread in turn: under full position load an
SOS's few milliseconds of work would take their share beside the bulk lane's
decoding, its store transactions, its live-state updates and the rendering
of deltas, and wait tens of milliseconds at each step. So the alarm lane's
session counts an alarm message in as it arrives (`arrived`) and out once the
live feed has it (`done`); meanwhile the bulk lane's ingest thread and the
live feed's delta renderer wait at their next checkpoint (`yield_to_alarms`)
— at most `MAX_PAUSE_S` each time, so that a flood of alarms slows the
positions but never stops them.

No I/O; threading only.
"""

from __future__ import annotations

import threading

# The longest one checkpoint of bulk work waits for alarms in progress.
MAX_PAUSE_S = 0.2


class AlarmGate:
    def __init__(self, max_pause_s: float = MAX_PAUSE_S) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._pending = 0
        self.max_pause_s = max_pause_s
        self.pauses = 0  # checkpoints that waited (for tests and metrics)

    def arrived(self, count: int = 1) -> None:
        """Alarm messages received (the alarm lane's network thread)."""
        with self._changed:
            self._pending += count

    def done(self, count: int) -> None:
        """Alarm messages stored, applied and handed to the live feed (its ingest thread)."""
        with self._changed:
            self._pending = max(0, self._pending - count)
            if not self._pending:
                self._changed.notify_all()

    def pending(self) -> bool:
        return self._pending > 0  # one int read: no lock needed for a hint

    def yield_to_alarms(self) -> None:
        """A bulk checkpoint: wait while alarms are in progress (up to max_pause_s)."""
        if not self._pending:
            return
        with self._changed:
            if self._pending:
                self.pauses += 1
                self._changed.wait_for(lambda: not self._pending, self.max_pause_s)
