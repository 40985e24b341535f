"""Alarms first: the bulk lane's work steps aside while an alarm is in progress (no broker)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from gateway.ingest import Incoming, Ingest
from gateway.precedence import AlarmGate
from gateway.state import LiveState
from gateway.store.sqlite import SqliteStore
from protocol import codec
from protocol.messages import Position

UNIT = "KEN-M01"


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_a_checkpoint_passes_at_once_when_no_alarm_is_in_progress() -> None:
    gate = AlarmGate(max_pause_s=30)
    gate.yield_to_alarms()
    gate.arrived(2)
    gate.done(2)
    gate.yield_to_alarms()
    assert gate.pauses == 0 and not gate.pending()


def test_bulk_work_waits_at_its_checkpoint_until_the_alarm_is_done(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.sqlite")
    gate = AlarmGate(max_pause_s=30)
    bulk = Ingest(
        store, LiveState(), lambda _: None, transaction_records=100, checkpoint=gate.yield_to_alarms
    )
    t = int(time.time() * 1000)
    positions = [
        Position(unit=UNIT, seq=seq, t_ms=t - 1000 + seq, lat=34.26, lon=-6.58, fix=3)
        for seq in range(1, 501)
    ]
    batch = [Incoming(codec.topic_of(p), codec.encode(p), t) for p in positions]
    gate.arrived()  # an SOS has just come in on the alarm lane
    worker = threading.Thread(target=bulk.process, args=(batch,))
    worker.start()
    wait_for(lambda: gate.pauses == 1, "the bulk lane to reach its first checkpoint")
    assert worker.is_alive() and bulk.metrics.received == 0 and store.track(UNIT, 0, t) == []
    gate.done(1)  # the SOS is on its way to the consoles
    worker.join(10)
    assert not worker.is_alive()
    assert len(store.track(UNIT, 0, t)) == 500 and bulk.metrics.batches == 5
    store.close()


def test_a_flood_of_alarms_slows_the_bulk_lane_but_never_stops_it() -> None:
    gate = AlarmGate(max_pause_s=0.05)
    gate.arrived()  # and never done: a unit stuck sending statuses, say
    worker = threading.Thread(target=lambda: [gate.yield_to_alarms() for _ in range(3)])
    worker.start()
    worker.join(10)
    assert not worker.is_alive() and gate.pauses == 3
