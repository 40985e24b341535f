"""gateway/pauses.py: the collector's pauses are counted; start-up is frozen, full runs rare."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from gateway.pauses import FULL_AFTER_YOUNGER, GcPauses


def test_every_collection_is_timed_by_generation() -> None:
    pauses = GcPauses()
    pauses.start()
    try:
        before = list(pauses.count)
        gc.collect(2)
        gc.collect(0)
    finally:
        pauses.stop()
    assert pauses.count[2] == before[2] + 1 and pauses.count[0] >= before[0] + 1
    assert pauses.seconds[2] > 0 and pauses.longest[2] > 0
    gc.collect(2)
    assert pauses.count[2] == before[2] + 1  # stopped: no longer counted


def test_tune_freezes_what_start_up_left_and_makes_full_collections_rare() -> None:
    # In a process of its own: freezing and the thresholds are the whole interpreter's.
    script = (
        "import gc, json, fastapi\n"
        "from gateway import pauses\n"
        "before = gc.get_threshold()\n"
        "frozen = pauses.tune()\n"
        "print(json.dumps([frozen, gc.get_freeze_count(), before, gc.get_threshold()]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    frozen, count, before, after = json.loads(result.stdout)
    assert frozen == count > 10_000  # the imports (FastAPI, pydantic) are long-lived
    assert after == [before[0], before[1], FULL_AFTER_YOUNGER]
