"""A drive through the real firmware core, and through a fixed-period reporter beside it:
what each puts on the wire, and how far the command room's picture is from the unit.

Pure computation, no broker and no sleep: the `Unit` runs with MemoryStorage, a
SequenceStore, an Outbox and a FakeClock, the link is up, and the broker acknowledges
every publish at once. The command room is modelled as the gateway will be: it decodes
each `pos` that arrives and draws the unit where `protocol.predictor.predict_report` puts
it now (or, for the "hold" variant of the fixed reporter, where it was last seen).

Sizes are MQTT 3.1.1's [MQTT-2.2, 3.3, 3.4, 3.12, 3.13]: a QoS 1 PUBLISH is a fixed
header (1 byte and 1-4 bytes of remaining length) then topic length (2), topic, packet id
(2) and payload; PUBACK 4 bytes; PINGREQ and PINGRESP 2 each. paho pings when nothing
went out or came in for the keepalive (firmware/drivers/mqtt_paho.py: 30 s). Imports
protocol/, firmware.core and bench.drives.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.drives import Sample
from firmware.core.clock import FakeClock
from firmware.core.config import UnitConfig
from firmware.core.outbox import Outbox
from firmware.core.seqstore import SequenceStore
from firmware.core.storage import MemoryStorage
from firmware.core.unit import MEASURE_HEALTH, PUBLISH, Action, Unit
from firmware.drivers.mqtt_paho import KEEPALIVE_SECONDS
from protocol import codec, predictor, topics
from protocol.messages import FIX_NONE, Position

UNIT_ID = "KEN-M01"
PUBACK_BYTES = 4
PING_BYTES = 2  # PINGREQ, and PINGRESP back
# Added per MQTT packet by the layers below, for the estimated columns: a TLS 1.3 record
# (5 header + 1 inner content type + 16 AEAD tag; mosquitto negotiates TLS 1.3 with
# paho here, bench/live.py prints what it got; a TLS 1.2 AES-GCM record is 29), and an
# IPv4 + TCP header with the timestamp option Linux sends (20 + 20 + 12).
TLS_RECORD_BYTES = 22
TLS12_RECORD_BYTES = 29
TCP_IP_BYTES = 52


class BenchVitals:
    """What the Pi's Vitals (firmware/pi/vitals.py) would measure over the drive, modelled:
    a bench machine has no thermal zone and no supply ADC, and constant vitals would flatter
    a health message that leaves out what did not change. CPU temperature wanders about
    48 degrees (about 1 degree a minute, read in millidegrees), free disk falls by a MB every
    few minutes (logs, the journal), the supply is a motorcycle's 12 V system: 13.6-14.2 V
    charging while moving, 12.4-12.8 V parked, with 0.05 V of ripple. Seeded."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed * 7919)
        self.cpu_temp_c = 48.0
        self.disk_free_mb = 12000.0

    def __call__(self, moving: bool) -> dict[str, float | int | None]:
        rng = self.rng
        self.cpu_temp_c += 0.3 * (48.0 - self.cpu_temp_c) + rng.gauss(0, 0.8)
        self.disk_free_mb -= rng.uniform(0.0, 0.6)
        supply = rng.uniform(13.6, 14.2) if moving else rng.uniform(12.4, 12.8)
        return {
            "cpu_temp_c": round(self.cpu_temp_c, 3),
            "disk_free_mb": int(self.disk_free_mb),
            "supply_v": round(supply + rng.gauss(0, 0.05), 3),
        }


def remaining_length_bytes(length: int) -> int:
    """Bytes of the variable-length "remaining length" field [MQTT-2.2.3]."""
    for size, limit in enumerate((128, 16384, 2097152, 268435456), start=1):
        if length < limit:
            return size
    raise ValueError(f"an MQTT packet cannot hold {length} bytes")


def publish_bytes(topic: str, payload: bytes, qos: int = 1) -> int:
    """Size of a PUBLISH packet [MQTT-3.3]."""
    remaining = 2 + len(topic.encode()) + (2 if qos else 0) + len(payload)
    return 1 + remaining_length_bytes(remaining) + remaining


@dataclass
class Wire:
    """What crossed the link, by kind (`pos`, `health`, `online`, ..., `ping`)."""

    keepalive_ms: int = KEEPALIVE_SECONDS * 1000
    mqtt_bytes: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)
    packets: int = 0  # MQTT control packets, both ways
    exchanges: int = 0  # request/answer pairs (PUBLISH/PUBACK, PINGREQ/PINGRESP)
    events: list[tuple[int, int, int]] = field(default_factory=list)  # (tick, bytes, packets)
    _last_ms: int | None = None

    def publish(self, tick_ms: int, topic: str, payload: bytes) -> None:
        self.advance(tick_ms)
        kind = topic.rsplit("/", 1)[1]
        size = publish_bytes(topic, payload) + PUBACK_BYTES
        self._count(tick_ms, kind, size)

    def advance(self, tick_ms: int) -> None:
        """Let time pass: the client pings after `keepalive_ms` of silence."""
        if self._last_ms is None:
            self._last_ms = tick_ms
        while self._last_ms + self.keepalive_ms <= tick_ms:
            self._count(self._last_ms + self.keepalive_ms, "ping", 2 * PING_BYTES)

    def _count(self, tick_ms: int, kind: str, size: int) -> None:
        self.mqtt_bytes[kind] += size
        self.messages[kind] += 1
        self.packets += 2
        self.exchanges += 1
        self.events.append((tick_ms, size, 2))
        self._last_ms = tick_ms

    def total(self) -> int:
        return sum(self.mqtt_bytes.values())

    def tls_bytes(self) -> int:
        return self.total() + TLS_RECORD_BYTES * self.packets

    def air_bytes(self) -> int:
        """Estimate: each packet in its own record and segment, one bare TCP ACK per exchange."""
        return self.tls_bytes() + TCP_IP_BYTES * (self.packets + self.exchanges)

    def between(
        self, first_ms: int, end_ms: int, record_bytes: int = TLS_RECORD_BYTES
    ) -> tuple[int, int]:
        """(MQTT bytes, TLS bytes) of what went between two ticks."""
        chosen = [(size, n) for tick, size, n in self.events if first_ms <= tick < end_ms]
        mqtt = sum(size for size, _ in chosen)
        return mqtt, mqtt + record_bytes * sum(n for _, n in chosen)


@dataclass
class Errors:
    """Metres between the unit and the command room's picture, at each usable fix.

    `in_flight`: drawn from the reports before this fix (the report this fix triggers is
    still on its way: the worst moment); `landed`: once it has arrived. Against the fix the
    receiver gives, and against the true position where the drive knows it. The room draws
    at its own clock (the drive's ticks on the first fix's time, as a gateway with a synced
    clock would), not at the receiver's time, which steps in some recordings.
    """

    in_flight: list[float] = field(default_factory=list)
    landed: list[float] = field(default_factory=list)
    in_flight_truth: list[float] = field(default_factory=list)
    landed_truth: list[float] = field(default_factory=list)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class CommandRoom:
    """Draws the unit from the last `pos` with a position it received."""

    def __init__(self, hold: bool = False) -> None:
        self.hold = hold
        self.last: Any = None  # a protocol Position: plain class, untyped by design

    def receive(self, topic: str, payload: bytes) -> Any:
        message = codec.decode(topic, payload)
        if message.KIND == "pos" and message.lat is not None:
            self.last = message
        return message if message.KIND == "pos" else None

    def draw(self, t_ms: int) -> tuple[float, float] | None:
        last = self.last
        if last is None:
            return None
        if self.hold:
            return last.lat, last.lon
        return predictor.predict_report(last, t_ms)


def _measure(errors_at: list[float], room: CommandRoom, t_ms: int, lat: float, lon: float) -> None:
    drawn = room.draw(t_ms)
    if drawn is not None:
        errors_at.append(predictor.distance_m(drawn[0], drawn[1], lat, lon))


@dataclass
class Reporter:
    """One reporter's run over a drive."""

    name: str
    wire: Wire
    errors: Errors
    reasons: Counter[str] = field(default_factory=Counter)
    duration_s: float = 0.0


def _base_ms(samples: list[Sample]) -> int:
    """Wall time at tick 0: from the first timed fix, so clock time and GPS time agree."""
    for sample in samples:
        if sample.fix.time_ms is not None:
            return sample.fix.time_ms - sample.tick_ms
    return 1732260000000


def _t_ms(sample: Sample, base_ms: int) -> int:
    """The time a report of this fix carries: GPS time, else the unit's clock."""
    time_ms = sample.fix.time_ms
    return time_ms if time_ms is not None else base_ms + sample.tick_ms


def _evaluate(errors: Errors, room: CommandRoom, sample: Sample, now_ms: int, landed: bool) -> None:
    """Where the room draws the unit at `now_ms`, against the fix and the truth."""
    fix = sample.fix
    _measure(errors.landed if landed else errors.in_flight, room, now_ms, fix.lat, fix.lon)
    if sample.true_lat is not None and sample.true_lon is not None:
        truth = errors.landed_truth if landed else errors.in_flight_truth
        _measure(truth, room, now_ms, sample.true_lat, sample.true_lon)


def replay_unit(
    samples: list[Sample], settings: dict[str, float] | None = None
) -> tuple[Reporter, list[tuple[int, str, bytes]], Any]:
    """The real core over the drive. Also returns its non-position publishes (tick, topic,
    payload), which a fixed reporter would send the same, and the settings it ran with."""
    clock = FakeClock(0)
    storage = MemoryStorage()
    unit = Unit(UNIT_ID, dict(settings or {}), SequenceStore(storage), Outbox(UNIT_ID, storage))
    base_ms = _base_ms(samples)
    room = CommandRoom()
    reporter = Reporter("balise (bounded error)", Wire(), Errors())
    others: list[tuple[int, str, bytes]] = []
    vitals = BenchVitals()

    def carry_out(actions: list[Action]) -> None:
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            tick = clock.ticks()
            if action.kind == PUBLISH:
                reporter.wire.publish(tick, action.topic, action.payload)
                position = room.receive(action.topic, action.payload)
                if position is not None:
                    reporter.reasons[position.reason] += 1
                else:
                    others.append((tick, action.topic, action.payload))
                if action.token is not None:
                    queue += unit.on_puback(action.token, tick)
            elif action.kind == MEASURE_HEALTH:
                fix = unit.last_fix
                moving = fix is not None and (fix.speed_mps or 0.0) >= predictor.STATIONARY_MPS
                queue += unit.on_health(tick, **vitals(moving))

    first_tick = samples[0].tick_ms if samples else 0
    clock.now_ms = first_tick
    unit.start(first_tick, base_ms + first_tick)
    carry_out(unit.on_link(True, first_tick))
    for sample in samples:
        clock.advance((sample.tick_ms - clock.ticks()) / 1000)
        tick = clock.ticks()
        reporter.wire.advance(tick)
        usable = unit.policy.usable(sample.fix)
        now_ms = base_ms + tick  # the command room's clock
        if usable:
            _evaluate(reporter.errors, room, sample, now_ms, landed=False)
        carry_out(unit.on_fix(sample.fix, tick) + unit.on_tick(tick))
        if usable:
            _evaluate(reporter.errors, room, sample, now_ms, landed=True)
    reporter.duration_s = _duration_s(samples)
    return reporter, others, unit.config


def replay_fixed(
    samples: list[Sample],
    period_s: float,
    others: list[tuple[int, str, bytes]],
    first_seq: int,
) -> tuple[Reporter, Reporter]:
    """A reporter that sends every usable fix `period_s` after its last report, with the
    same codec and fields as the unit and the unit's other messages (health, presence) at
    the same moments. Two command rooms watch it: one extrapolating with the predictor,
    one holding the last position."""
    base_ms = _base_ms(samples)
    wire = Wire()
    rooms = (CommandRoom(), CommandRoom(hold=True))
    predicted = Reporter(f"fixed {period_s:g} s, drawn by the predictor", wire, Errors())
    held = Reporter(f"fixed {period_s:g} s, drawn where last seen", wire, Errors())
    topic = topics.topic(UNIT_ID, "pos")
    policy_unit: Any = UnitConfig()
    pending = sorted(others)
    seq = first_seq
    last_tick: int | None = None
    for sample in samples:
        tick = sample.tick_ms
        while pending and pending[0][0] <= tick:
            other_tick, other_topic, payload = pending.pop(0)
            wire.publish(other_tick, other_topic, payload)
        wire.advance(tick)
        fix = sample.fix
        usable = fix.has_position() and (fix.hdop is None or fix.hdop <= policy_unit.max_hdop)
        if not usable:
            continue
        t_ms = _t_ms(sample, base_ms)
        now_ms = base_ms + tick  # the command room's clock
        for room, reporter in zip(rooms, (predicted, held), strict=True):
            _evaluate(reporter.errors, room, sample, now_ms, landed=False)
        if last_tick is None or tick - last_tick >= period_s * 1000:
            last_tick = tick
            seq += 1
            position = Position(
                unit=UNIT_ID,
                seq=seq,
                t_ms=t_ms,
                lat=fix.lat,
                lon=fix.lon,
                speed_mps=fix.speed_mps,
                heading_deg=fix.heading_deg,
                acc_m=fix.acc_m,
                hdop=fix.hdop,
                fix=fix.mode if fix.mode else FIX_NONE,
                reason="heartbeat",
            )
            payload = codec.encode(position)
            wire.publish(tick, topic, payload)
            predicted.reasons["heartbeat"] += 1
            for room in rooms:
                room.receive(topic, payload)
        for room, reporter in zip(rooms, (predicted, held), strict=True):
            _evaluate(reporter.errors, room, sample, now_ms, landed=True)
    for _, other_topic, payload in pending:
        wire.publish(samples[-1].tick_ms, other_topic, payload)
    predicted.duration_s = held.duration_s = _duration_s(samples)
    held.reasons = predicted.reasons
    return predicted, held


def _duration_s(samples: list[Sample]) -> float:
    if not samples:
        return 0.0
    # n epochs at 1 Hz cover n seconds
    return (samples[-1].tick_ms - samples[0].tick_ms) / 1000 + 1
