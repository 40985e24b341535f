"""The ingest pipeline on a real SQLite file: exactly once, order, rejects, acks after commit."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.ingest import Changes, Incoming, Ingest, IngestMetrics, command_ids
from gateway.state import LiveState
from gateway.store.sqlite import SqliteStore
from protocol import codec, predictor
from protocol.messages import Ack, Batch, Health, Online, Position, Sos, StatusChange

UNIT = "KEN-M01"


class Pipeline:
    def __init__(self, path: Path) -> None:
        self.store = SqliteStore(str(path))
        self.state = LiveState()
        self.commands: list[Any] = []
        self.ingest = Ingest(self.store, self.state, self.commands.append)
        self.now_ms = int(time.time() * 1000)

    def feed(self, *messages: Any, raw: list[tuple[str, bytes]] = ()) -> Changes:  # type: ignore[assignment]
        batch = [Incoming(codec.topic_of(m), codec.encode(m), self.now_ms) for m in messages]
        batch += [Incoming(topic, payload, self.now_ms) for topic, payload in raw]
        return self.ingest.process(batch)

    def acked(self) -> list[tuple[int, int]]:
        return [
            pair for command in self.commands if isinstance(command, Ack) for pair in command.ranges
        ]

    def view(self) -> dict[str, Any]:
        return self.state.views(self.now_ms, [UNIT])[0]


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline(tmp_path / "gateway.sqlite")


def position(seq: int, t_ms: int, lat: float = 34.26, lon: float = -6.58) -> Position:
    return Position(
        unit=UNIT, seq=seq, t_ms=t_ms, lat=lat, lon=lon, speed_mps=0.0, heading_deg=0.0, fix=3
    )


def test_a_position_is_stored_and_shown(pipeline: Pipeline) -> None:
    t = pipeline.now_ms
    assert pipeline.feed(position(1, t)) == Changes({UNIT}, set())  # a move, not an alarm
    assert pipeline.view()["position"]["lat"] == 34.26
    assert [p.seq for p in pipeline.store.track(UNIT, t - 1, t + 1)] == [1]
    assert pipeline.acked() == []  # positions leave the unit on the broker's PUBACK


def test_duplicates_and_replays_are_stored_once_but_acknowledged_again(pipeline: Pipeline) -> None:
    t = pipeline.now_ms
    change = StatusChange(unit=UNIT, seq=5, t_ms=t, status=3)
    pipeline.feed(change, change)
    pipeline.feed(change)  # the unit missed the ack and re-sent it
    assert pipeline.ingest.metrics.stored == 1 and pipeline.ingest.metrics.duplicates == 2
    assert pipeline.acked() == [(5, 5), (5, 5)]
    assert pipeline.view()["status"] == "en_route"


def test_a_late_backfill_goes_to_history_but_never_moves_the_unit_back(pipeline: Pipeline) -> None:
    t = pipeline.now_ms
    pipeline.feed(position(50, t, lat=34.30))
    backlog = Batch(
        unit=UNIT, items=[position(40, t - 60_000, lat=34.20), position(41, t - 50_000, lat=34.21)]
    )
    pipeline.feed(backlog)
    assert pipeline.view()["position"]["lat"] == 34.30
    assert [p.seq for p in pipeline.store.track(UNIT, t - 120_000, t)] == [40, 41, 50]
    assert pipeline.acked() == [(40, 41)]


def test_a_bad_message_is_counted_and_the_next_good_one_flows(pipeline: Pipeline) -> None:
    t = pipeline.now_ms
    # A payload that names its unit (as every one did before protocol 1.1) must match the topic.
    spoofed = b'{"v":1,"u":"KEN-C01","q":9,"t":%d,"st":6}' % t
    pipeline.feed(
        position(2, t),
        raw=[
            ("balise/v1/KEN-M01/pos", b"{garbage"),
            ("balise/v1/KEN-M01/status", spoofed),  # KEN-C01's payload on KEN-M01's topic
            ("balise/v1/KEN-M01/pos", codec.encode(position(3, t + 3_600_000))),  # an hour ahead
            # A number with no float: once an OverflowError that stopped the whole lane.
            ("balise/v1/KEN-M01/pos", b'{"q":5,"t":%d,"la":%s,"lo":1}' % (t, b"9" * 400)),
            # Half a surrogate pair: once a UnicodeEncodeError in the store's write.
            ("balise/v1/KEN-M01/status", b'{"q":6,"t":%d,"st":6,"in":"\\ud800"}' % t),
            (
                "balise/v1/KEN-M01/status",
                codec.encode(StatusChange(unit=UNIT, seq=4, t_ms=t, status=1)),
            ),
        ],
    )
    rejected = pipeline.ingest.metrics.rejected
    assert rejected == {"bad_json": 1, "unit_mismatch": 1, "future_time": 1, "bad_value": 2}
    assert pipeline.view()["status"] == "available"
    assert [p.seq for p in pipeline.store.track(UNIT, t - 1, t + 7_200_000)] == [2]


def test_sos_stages_and_a_dispatchers_acknowledgement(pipeline: Pipeline) -> None:
    t = pipeline.now_ms
    pipeline.feed(Sos(unit=UNIT, seq=10, t_ms=t, action="raise", alarm_id=10, lat=34.2, lon=-6.5))
    assert pipeline.acked() == [(10, 10)]
    assert pipeline.view()["sos"]["alarm_id"] == 10
    assert pipeline.state.acknowledge_sos(UNIT, 10, "amina", t)
    assert pipeline.view()["sos"]["acknowledged_by"] == "amina"
    assert not pipeline.state.acknowledge_sos(UNIT, 99, "amina", t)
    pipeline.feed(Sos(unit=UNIT, seq=12, t_ms=t, action="cancel", alarm_id=10))
    assert pipeline.view()["sos"]["cancelled"]


def online(seq: int, up: bool) -> Online:
    return Online(unit=UNIT, seq=seq, t_ms=1, clock_time=True, online=up)


def test_presence_follows_the_wills_of_the_latest_connection(pipeline: Pipeline) -> None:
    # Connection 1: will seq 10, hello 11. Connection 2: will 20, hello 21.
    pipeline.feed(online(11, True))
    pipeline.feed(online(10, False))  # connection 1 lost
    assert pipeline.view()["online"] is False
    pipeline.feed(online(21, True))
    assert pipeline.view()["online"] is True
    pipeline.feed(online(10, False))  # connection 1's will delivered again, late: old news
    assert pipeline.view()["online"] is True
    pipeline.feed(online(20, False))  # connection 2 lost
    assert pipeline.view()["online"] is False


def test_a_silent_unit_turns_stale(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path / "gateway.sqlite")
    pipeline.state = LiveState(heartbeat_s=60, grace_s=10)
    pipeline.ingest.state = pipeline.state
    pipeline.feed(position(1, pipeline.now_ms))
    assert pipeline.state.tick(pipeline.now_ms + 69_000) == set()
    assert pipeline.state.tick(pipeline.now_ms + 71_000) == {UNIT}
    assert pipeline.view()["stale"] is True


def test_live_state_is_rebuilt_from_the_store_after_a_restart(tmp_path: Path) -> None:
    first = Pipeline(tmp_path / "gateway.sqlite")
    t = first.now_ms
    first.feed(
        position(1, t, lat=34.25), StatusChange(unit=UNIT, seq=2, t_ms=t, status=4), online(3, True)
    )
    first.store.close()
    second = Pipeline(tmp_path / "gateway.sqlite")
    second.state.apply(second.store.latest())
    view = second.view()
    assert (view["position"]["lat"], view["status"], view["online"]) == (34.25, "on_scene", True)


def test_health_keeps_the_fields_a_short_health_leaves_out(pipeline: Pipeline) -> None:
    t = pipeline.now_ms
    pipeline.feed(Online(unit=UNIT, seq=1, t_ms=t - 200_000, online=True, firmware="1.1.0"))
    full = Health(
        unit=UNIT,
        seq=2,
        t_ms=t - 120_000,
        cpu_temp_c=49.0,
        disk_free_mb=12000,
        outbox_depth=0,
        sats=9,
        hdop=0.9,
        uptime_s=60,
    )
    pipeline.feed(full)
    # What changed, and the uptime (firmware/core/health.py).
    pipeline.feed(Health(unit=UNIT, seq=3, t_ms=t - 60_000, sats=11, uptime_s=120))
    health = pipeline.view()["health"]
    assert (health["sats"], health["uptime_s"], health["seq"]) == (11, 120, 3)
    assert (health["cpu_temp_c"], health["disk_free_mb"], health["supply_v"]) == (49, 12000, None)
    assert health["firmware"] == "1.1.0"  # from `online`
    # A late, older health fills in what is unknown but overrides nothing newer.
    late = Health(unit=UNIT, seq=0, t_ms=t - 180_000, sats=4, hdop=2.5, supply_v=12.6)
    pipeline.feed(late)
    health = pipeline.view()["health"]
    assert (health["sats"], health["hdop"], health["supply_v"]) == (11, 0.9, 12.6)
    assert (health["seq"], health["uptime_s"]) == (3, 120)


def test_a_braking_report_is_extrapolated_to_its_stop(pipeline: Pipeline) -> None:
    t = pipeline.now_ms
    braking = position(7, t - 20_000, lat=34.26, lon=-6.58).replace(
        speed_mps=10.0, heading_deg=0.0, accel_mps2=-2.5
    )
    pipeline.feed(braking)
    view = pipeline.view()["position"]
    assert view["accel_mps2"] == -2.5
    # 10 m/s braking at 2.5 m/s^2 stops 20 m on (constant speed would say 200 m).
    north = predictor.distance_m(34.26, -6.58, view["predicted"]["lat"], view["predicted"]["lon"])
    assert abs(north - 20.0) < 0.1


def test_a_new_status_or_sos_is_an_alarm_and_its_repeat_changes_nothing(pipeline: Pipeline) -> None:
    t = pipeline.now_ms
    change = StatusChange(unit=UNIT, seq=5, t_ms=t, status=3)
    assert pipeline.feed(change, position(6, t)) == Changes({UNIT}, {UNIT})
    assert pipeline.feed(change) == Changes()  # a re-send: stored already, acknowledged again
    raised = Sos(unit=UNIT, seq=7, t_ms=t, action="raise", alarm_id=7, lat=34.2, lon=-6.5)
    assert pipeline.feed(raised).alarms == {UNIT}
    assert pipeline.acked() == [(5, 5), (5, 5), (7, 7)]


def test_a_status_that_overtakes_queued_positions_leaves_the_same_picture(tmp_path: Path) -> None:
    """The alarm lane stores a status before the bulk lane stores the positions sent before it:
    the unit ends up where and as it would have in send order, and no rev goes backwards."""
    pictures = []
    for name, order in (("in order", ("bulk", "alarm")), ("overtaken", ("alarm", "bulk"))):
        pipeline = Pipeline(tmp_path / f"{name}.sqlite")
        t = pipeline.now_ms
        lanes = {
            "bulk": [position(seq, t + seq, lat=34.26 + seq * 1e-3) for seq in range(1, 6)],
            "alarm": [StatusChange(unit=UNIT, seq=6, t_ms=t + 6, status=4)],
        }
        revs = []
        for lane in order:
            pipeline.feed(*lanes[lane])
            revs.append(pipeline.view()["rev"])
        view = pipeline.view()
        assert revs == sorted(revs) and revs[0] < revs[1]
        pictures.append((view["position"]["lat"], view["status"], view["status_since"] - t))
    assert pictures[0] == pictures[1] == (34.265, "on_scene", 6)


def test_two_lanes_on_two_threads_store_everything_once_with_their_own_counters(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "gateway.sqlite")
    state = LiveState()
    commands: list[Any] = []
    ids = command_ids()
    bulk = Ingest(store, state, commands.append, cmd_ids=ids, transaction_records=100)
    alarm = Ingest(store, state, commands.append, cmd_ids=ids, urgent=True)
    t = int(time.time() * 1000)

    def incoming(message: Any) -> Incoming:
        return Incoming(codec.topic_of(message), codec.encode(message), t)

    positions = [incoming(position(seq, t - 10_000 + seq)) for seq in range(1, 2001)]
    statuses = [incoming(StatusChange(unit=UNIT, seq=s, t_ms=t, status=3)) for s in (3000, 3001)]
    errors: list[BaseException] = []

    def run(work: Any) -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(lambda: bulk.process(positions),)),
        threading.Thread(target=run, args=(lambda: [alarm.process([s]) for s in statuses],)),
        threading.Thread(target=run, args=(lambda: alarm.process(statuses[:1]),)),  # a re-send
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    total = IngestMetrics.total([bulk.metrics, alarm.metrics])
    assert (total.received, total.stored, total.duplicates) == (2003, 2002, 1)
    assert bulk.metrics.batches == 20  # 2000 positions in transactions of 100
    assert len(store.track(UNIT, 0, t)) == 2000
    cmd_ids = [command.cmd_id for command in commands]
    assert len(cmd_ids) == len(set(cmd_ids)) == 3  # one counter: no id given twice
    assert state.views(t, [UNIT])[0]["status"] == "en_route"
    store.close()
