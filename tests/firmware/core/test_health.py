"""Health messages carry what changed since the broker took the last one (portable)."""

from firmware.core.health import HealthDiff
from protocol.messages import Health
from tests.firmware.core.unit_harness import UNIT, Harness, sent

MICROPYTHON = True

T0 = 1732260000000


def measured(seq, **changes):
    values = {
        "unit": UNIT,
        "seq": seq,
        "t_ms": T0 + seq * 60000,
        "cpu_temp_c": 48.7,
        "disk_free_mb": 12000,
        "outbox_depth": 0,
        "sats": 9,
        "hdop": 0.94,
        "uptime_s": seq * 60,
        "firmware": "1.1.0",
        "supply_v": 13.84,
    }
    values.update(changes)
    return Health(**values)


def test_the_first_health_is_full_at_wire_precision():
    first = HealthDiff(full_every=10).outgoing(measured(1))
    assert (first.cpu_temp_c, first.hdop, first.supply_v) == (49, 0.9, 13.8)
    assert first.firmware == "1.1.0" and first.disk_free_mb == 12000


def test_then_only_what_changed_and_the_uptime():
    diff = HealthDiff(full_every=10)
    diff.delivered(diff.outgoing(measured(1)))
    # 48.9 and 13.81 are the same at the wire's 1 degree and 0.1 V.
    second = diff.outgoing(measured(2, cpu_temp_c=48.9, supply_v=13.81, sats=11, outbox_depth=3))
    shown = {name: value for name, value in second.values().items() if value is not None}
    assert shown == {
        "unit": UNIT,
        "seq": 2,
        "t_ms": T0 + 120000,
        "clock_time": False,
        "sats": 11,
        "outbox_depth": 3,
        "uptime_s": 120,
    }


def test_a_change_is_repeated_until_the_broker_takes_it():
    diff = HealthDiff(full_every=10)
    diff.delivered(diff.outgoing(measured(1)))
    lost = diff.outgoing(measured(2, disk_free_mb=11990))  # superseded in the outbox, say
    assert lost.disk_free_mb == 11990
    again = diff.outgoing(measured(3, disk_free_mb=11990))
    assert again.disk_free_mb == 11990
    diff.delivered(again)
    assert diff.outgoing(measured(4, disk_free_mb=11990)).disk_free_mb is None


def test_every_nth_health_is_full_again():
    diff = HealthDiff(full_every=3)
    kinds = []
    for seq in range(1, 8):
        health = diff.outgoing(measured(seq))
        diff.delivered(health)
        kinds.append("full" if health.firmware else "short")
    assert kinds == ["full", "short", "short", "full", "short", "short", "full"]


def test_full_every_one_sends_every_field_every_time():
    diff = HealthDiff(full_every=1)
    for seq in range(1, 4):
        health = diff.outgoing(measured(seq))
        diff.delivered(health)
        assert health.firmware == "1.1.0" and health.disk_free_mb == 12000


def test_the_unit_learns_what_the_broker_took_from_its_pubacks():
    harness = Harness(health_interval_s=60)
    harness.link(True)
    harness.fix()
    harness.puback()
    healths = []
    for _ in range(3):
        harness.advance(60)
        harness.fix()
        actions = harness.unit.on_health(harness.clock.ticks(), cpu_temp_c=51.0, disk_free_mb=900)
        healths += sent(harness.run(actions), "health")
        harness.puback(actions)
    assert [h.disk_free_mb for h in healths] == [900, None, None]
    assert [h.cpu_temp_c for h in healths] == [51, None, None]
    assert [h.uptime_s for h in healths] == [60, 120, 180]
    assert healths[0].firmware and not healths[1].firmware
