"""Garbage-collector pauses in the gateway's process: fewer, shorter, and counted.

CPython's cyclic collector holds the GIL while it runs, so it stops every thread
of the process: the alarm lane, its commit, the live feed. A full collection
(generation 2) walks every long-lived object: the modules the gateway imports
(FastAPI, pydantic, uvicorn: some 50,000 objects) and the live state of every
unit. Under full position load one came every 3 s or so and took 32-61 ms, and
an SOS that arrived meanwhile waited for it (docs/benchmarks.md). So, once the
gateway is set up (`tune()`):

- one collection, then `gc.freeze()`: what is alive after start-up lives as
  long as the process, and the collector no longer walks it;
- a full collection only after `FULL_AFTER_YOUNGER` collections of generation
  1 (CPython's default is 10). Garbage cycles are still collected, less often;
  everything else is freed by reference counting, as always.

Every collection is timed (`GcPauses`, through `gc.callbacks`) and `/metrics`
shows them, so a pause that comes back shows up. Standard library only.
"""

from __future__ import annotations

import gc
import time
from typing import Any

FULL_AFTER_YOUNGER = 1000
GENERATIONS = (0, 1, 2)


class GcPauses:
    """Count, total and longest pause of the collector, per generation, since `start()`."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        # Objects gc.freeze() set aside at start-up (tune()): gc.get_freeze_count() walks them
        # all, some 50,000, at every call, too dear for each /metrics scrape.
        self.frozen = 0
        self._started = 0.0

    def start(self) -> None:
        if self._on_collect not in gc.callbacks:
            gc.callbacks.append(self._on_collect)

    def stop(self) -> None:
        if self._on_collect in gc.callbacks:
            gc.callbacks.remove(self._on_collect)

    def _on_collect(self, phase: str, info: dict[str, Any]) -> None:
        # Runs inside the collection, on whichever thread set it off: plain arithmetic only.
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = info["generation"]
        self.count[generation] += 1
        self.seconds[generation] += pause
        self.longest[generation] = max(self.longest[generation], pause)


def tune() -> int:
    """After start-up: collect, freeze what is alive, make full collections rare.

    Returns the number of objects frozen."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_AFTER_YOUNGER)
    return gc.get_freeze_count()
