"""The unit core: status, SOS, assignment, presence (portable: also runs under MicroPython).

Each test is a list of events in and the actions out, with a fake clock.
"""

from firmware.core.config import UnitConfig
from firmware.core.fix import MODE_3D, Fix
from firmware.core.signals import (
    ACKNOWLEDGED,
    ASSIGNMENT,
    BLINK,
    CLICK,
    FLASH,
    OFF,
    ON,
    RECEIVED,
    SOS_SENT,
)
from firmware.core.unit import MEASURE_HEALTH
from firmware.errors import ConfigError
from protocol import codec, status, topics
from tests.firmware.core.unit_harness import T0_MS, UNIT, Harness, buzzes, leds, publishes, sent
from tests.protocol.portable import raises

MICROPYTHON = True


def online_harness(**settings):
    harness = Harness(**settings)
    harness.link(True)
    harness.fix()
    harness.puback()
    return harness


def test_connecting_announces_presence_retained():
    harness = Harness()
    actions = harness.link(True)
    assert leds(actions, "link") == [ON]
    hello = publishes(actions)[0]
    assert hello.topic == topics.topic(UNIT, "online") and hello.retain and hello.qos == 1
    assert codec.decode(hello.topic, hello.payload).online is True


def test_the_last_will_says_offline_with_a_fresh_seq():
    harness = Harness()
    topic, payload = harness.unit.will(0)
    will = codec.decode(topic, payload)
    assert topic == topics.topic(UNIT, "online") and will.online is False
    hello = sent(harness.link(True), "online")[0]
    assert hello.seq > will.seq


def test_a_status_press_is_published_at_once_and_blinks_until_the_gateway_acks():
    harness = online_harness()
    actions = harness.press("b2")
    assert buzzes(actions) == [CLICK]
    assert leds(actions, "b2") == [BLINK]
    change = sent(actions, "status")[0]
    assert change.status == status.EN_ROUTE
    assert (change.lat, change.lon) == (34.261, -6.5802)
    harness.puback(actions)
    assert leds(harness.gateway_ack(change.seq), "b2") == [ON]


def test_a_status_change_reports_a_fix_only_if_the_room_has_not_had_it():
    harness = online_harness()  # its fix is reported
    assert sent(harness.press("b2"), "pos") == []  # the status carries that same fix
    harness.fix(lat=34.26105)  # 5.6 m on: within the bound, not reported by itself
    reported = sent(harness.press("b3"), "pos")
    assert [(message.reason, message.lat) for message in reported] == [("status", 34.26105)]


def test_a_broker_puback_alone_does_not_light_the_led_steady():
    harness = online_harness()
    actions = harness.press("b1")
    assert ON not in leds(harness.puback(actions), "b1")
    assert ON not in leds(harness.advance(3), "b1")


def test_an_unacknowledged_status_is_resent_with_the_same_seq():
    harness = online_harness(status_retry_s=10)
    change = sent(harness.press("b3"), "status")[0]
    harness.puback()
    resent = sent(harness.advance(10.5), "status")
    assert [message.seq for message in resent] == [change.seq]
    harness.puback()
    harness.gateway_ack(change.seq)
    assert sent(harness.advance(30), "status") == []


def test_the_newest_status_wins():
    harness = online_harness()
    first = sent(harness.press("b1"), "status")[0]
    second = sent(harness.press("b3"), "status")[0]
    harness.puback()
    # The old change's ack does not confirm the new one.
    assert ON not in leds(harness.gateway_ack(first.seq), "b3")
    assert leds(harness.gateway_ack(second.seq), "b3") == [ON]


def test_sos_raise_repeat_received_and_acknowledged_by_a_person():
    harness = online_harness(sos_repeat_s=5)
    actions = harness.press("sos")
    assert leds(actions, "sos") == [FLASH] and SOS_SENT in buzzes(actions)
    raised = sent(actions, "sos")[0]
    assert raised.action == "raise" and raised.alarm_id == raised.seq
    assert raised.lat is not None
    harness.puback()
    repeats = sent(harness.advance(5.1), "sos")
    assert len(repeats) == 1 and repeats[0].alarm_id == raised.seq and repeats[0].seq > raised.seq
    harness.puback()
    actions = harness.gateway_ack(raised.seq)
    assert leds(actions, "sos") == [BLINK] and buzzes(actions) == [RECEIVED]
    # The gateway has it; it goes on repeating until a person acknowledges.
    assert len(sent(harness.advance(5.1), "sos")) == 1
    harness.puback()
    actions = harness.dispatcher_ack(raised.seq)
    assert leds(actions, "sos") == [ON] and buzzes(actions) == [ACKNOWLEDGED]
    assert sent(harness.advance(20), "sos") == []


def test_every_fix_is_reported_while_an_sos_is_active():
    harness = online_harness(min_interval_s=1)
    harness.press("sos")
    reported = 0
    for _ in range(5):
        harness.advance(0.2)
        reported += len(sent(harness.fix(speed=0.0), "pos"))
    assert reported == 5


def test_a_long_press_on_the_hold_button_raises_sos_not_a_status():
    harness = online_harness(sos_hold_button="b4", sos_hold_ms=2000)
    actions = harness.press("b4", hold_s=2.2)
    assert sent(actions, "status") == []
    assert [message.action for message in sent(actions, "sos")] == ["raise"]


def test_a_short_press_on_the_hold_button_is_its_status():
    harness = online_harness(sos_hold_button="b4", sos_hold_ms=2000)
    actions = harness.press("b4", hold_s=0.3)
    assert [message.status for message in sent(actions, "status")] == [status.BUSY]
    assert sent(actions, "sos") == []


def test_cancelling_needs_its_own_long_press():
    harness = online_harness(sos_hold_ms=2000, sos_cancel_hold_ms=3000)
    # Holding the SOS button on and on after raising does not cancel.
    actions = harness.press("sos", hold_s=4)
    assert [message.action for message in sent(actions, "sos")] == ["raise"]
    # A short press is no cancel either (repeats of the raise may go out meanwhile).
    assert "cancel" not in [
        message.action for message in sent(harness.press("sos", hold_s=1), "sos")
    ]
    actions = harness.press("sos", hold_s=3.2)
    cancel = sent(actions, "sos")[-1]
    assert cancel.action == "cancel"
    harness.puback()
    assert leds(harness.gateway_ack(cancel.seq), "sos") == [OFF]
    assert sent(harness.advance(20), "sos") == []


def test_an_sos_raised_offline_goes_first_when_the_link_returns():
    harness = Harness()
    harness.fix()
    harness.press("b1")
    actions = harness.press("sos")
    assert publishes(actions) == []
    for _ in range(3):
        harness.advance(2)
        harness.fix(lat=34.2611)
    actions = harness.link(True)
    kinds = [message.KIND for message in sent(actions)]
    assert kinds[0] == "online" and kinds[1] == "sos", kinds
    assert "status" in kinds
    # And it keeps repeating until acknowledged.
    harness.puback()
    assert len(sent(harness.advance(5.1), "sos")) == 1


def test_an_assignment_is_pending_until_the_rider_goes_en_route():
    harness = online_harness()
    actions = harness.assign("INC-7")
    assert ASSIGNMENT in buzzes(actions) and leds(actions, "b2") == [FLASH]
    change = sent(harness.press("b2"), "status")[0]
    assert change.status == status.EN_ROUTE and change.incident == "INC-7"
    later = sent(harness.press("b3"), "status")[0]
    assert later.incident is None


def test_a_repeated_command_is_ignored_and_garbage_is_counted():
    harness = online_harness()
    harness.assign("INC-7")
    unit = harness.unit
    payload = codec.encode(harness.unit.assignment.replace(incident="INC-8"))
    assert unit.on_downlink(topics.cmd_topic(UNIT), payload, 0) == []
    assert unit.assignment.incident == "INC-7"
    assert unit.on_downlink(topics.cmd_topic(UNIT), b"{garbage", 0) == []
    assert unit.rejected_downlinks == 1


def test_a_ping_reports_the_position_now():
    harness = online_harness()
    harness.advance(2)
    from protocol.messages import Ping

    reported = sent(harness.command(Ping()), "pos")
    assert [message.reason for message in reported] == ["requested"]


def test_health_is_measured_every_interval():
    harness = online_harness(health_interval_s=60)
    assert [a.kind for a in harness.advance(59) if a.kind == MEASURE_HEALTH] == []
    assert [a.kind for a in harness.advance(2) if a.kind == MEASURE_HEALTH] == [MEASURE_HEALTH]
    harness.fix()  # the GPS still talking (silence for 5 s is a lost fix)
    health = sent(
        harness.run(harness.unit.on_health(harness.clock.ticks(), cpu_temp_c=51.0)), "health"
    )[0]
    assert health.cpu_temp_c == 51 and health.uptime_s == 61 and health.firmware
    assert health.outbox_depth >= 0 and health.sats == 9


def test_time_is_the_units_clock_until_gps_time_is_trusted():
    harness = Harness(gps_time_trust_fixes=3)
    harness.link(True)
    hello = sent(harness.actions, "online")[0]
    assert hello.clock_time and hello.t_ms == 1732260000000 + 5000
    for _ in range(3):
        harness.advance(1)
        harness.fix()
    change = sent(harness.press("b1"), "status")[0]
    assert not change.clock_time
    # Pressed 150 ms ago; the press counts once debounced, 30 ms after the edge.
    assert change.t_ms == 1732260000000 + harness.clock.ticks() - 120


def test_config_errors_name_the_key():
    for settings, words in (
        ({"threshold_m": 0}, "threshold_m"),
        ({"threshold_m": "far"}, "threshold_m"),
        ({"colour": 1}, "colour"),
        ({"buttons": {"b1": "dancing"}}, "buttons.b1"),
        ({"buttons": {"b1": "available"}}, "no way to raise an SOS"),
        ({"sos_hold_button": "sos"}, "sos_hold_button"),
        ({"sos_hold_ms": 3000, "sos_cancel_hold_ms": 2500}, "sos_cancel_hold_ms"),
        ({"report_altitude": 1}, "report_altitude"),
        ({"health_full_every": 0}, "health_full_every"),
    ):
        error = raises(ConfigError, UnitConfig, **settings)
        assert words in str(error), (words, str(error))


def test_a_new_or_wiped_unit_numbers_above_anything_it_sent_before():
    harness = Harness()
    hello = sent(harness.link(True), "online")[0]
    # T0 + 5 s wall clock, in tenths of a second.
    assert hello.seq > (1732260000000 + 5000) // 100
    # The same storage after a reboot continues; it does not jump again.
    again = Harness(storage=harness.storage)
    assert sent(again.link(True), "online")[0].seq < hello.seq + 2000


def test_receiver_values_beyond_the_protocol_never_stop_an_sos():
    harness = online_harness()
    # A glitching receiver: 200 m/s, an error estimate of 200 km, HDOP 99.999.
    harness.fix(speed=200.0, acc=2e5, hdop=99.999)
    actions = harness.press("sos")
    raised = sent(actions, "sos")[0]
    assert raised.speed_mps is None and raised.acc_m is None
    assert leds(actions, "sos") == [FLASH]


def test_an_open_alarm_and_a_pending_status_survive_a_restart():
    harness = online_harness(sos_repeat_s=5)
    change = sent(harness.press("b3"), "status")[0]
    raised = sent(harness.press("sos"), "sos")[0]
    harness.puback()
    harness.gateway_ack(raised.seq)  # the gateway has the SOS, no person yet
    # Power cut; the unit boots on the same card.
    again = Harness(storage=harness.storage, sos_repeat_s=5)
    assert leds(again.actions, "sos") == [BLINK]
    assert leds(again.actions, "b3") == [BLINK]
    again.link(True)
    again.fix()
    repeats = sent(again.advance(5.5), "sos")
    assert repeats and all(message.alarm_id == raised.seq for message in repeats)
    assert leds(again.dispatcher_ack(raised.seq), "sos") == [ON]
    again.puback()
    resent = sent(again.advance(11), "status")
    assert [message.seq for message in resent] == [change.seq]
    assert leds(again.gateway_ack(change.seq), "b3") == [ON]


def test_a_new_sos_is_possible_while_a_cancel_waits_and_the_cancel_is_resent():
    harness = online_harness(status_retry_s=10)
    first = sent(harness.press("sos"), "sos")[0]
    cancel = next(m for m in sent(harness.press("sos", hold_s=3.2), "sos") if m.action == "cancel")
    harness.puback()
    resent = [m for m in sent(harness.advance(10.5), "sos") if m.action == "cancel"]
    assert [m.seq for m in resent] == [cancel.seq]
    second = sent(harness.press("sos"), "sos")
    assert [m.action for m in second] == ["raise"] and second[0].alarm_id > first.alarm_id


def test_acks_from_a_restarted_gateway_are_not_taken_for_repeats():
    harness = online_harness()
    first = sent(harness.press("b1"), "status")[0]
    harness.gateway_ack(first.seq)
    second = sent(harness.press("b2"), "status")[0]
    harness.cmd_id = 0  # a gateway that restarted and counts from 1 again
    assert leds(harness.gateway_ack(second.seq), "b2") == [ON]


def test_a_receiver_that_goes_quiet_is_a_lost_fix():
    harness = online_harness()
    harness.advance(2)
    assert sent(harness.advance(4), "pos")[-1].reason == "fix_lost"
    assert leds(harness.actions, "gps")[-1] == BLINK


def test_the_bound_is_kept_against_the_report_the_command_room_decodes():
    # 7 decimals from the receiver; the wire carries fewer, and the room draws what it decodes.
    harness = Harness()
    harness.link(True)
    reported = sent(harness.fix(lat=34.26101234, lon=-6.58021256, speed=12.344, heading=270.04))
    assert reported[-1].lat != 34.26101234
    assert harness.unit.policy.last_report == reported[-1]


def test_altitude_is_reported_only_when_asked_for():
    for settings, expected in (({}, None), ({"report_altitude": True}, 12.0)):
        harness = Harness(**settings)
        harness.link(True)
        fix = Fix(time_ms=T0_MS, mode=MODE_3D, lat=34.26, lon=-6.58, alt_m=12.2, hdop=0.9)
        reported = sent(harness.run(harness.unit.on_fix(fix, harness.clock.ticks())), "pos")
        assert reported[-1].alt_m == expected, settings


def test_a_report_made_while_braking_carries_the_deceleration():
    harness = Harness()
    harness.link(True)
    harness.fix(speed=15.0)
    harness.advance(1)
    reported = sent(harness.fix(speed=12.0, lat=34.2620), "pos")  # 110 m on: a report
    assert reported[-1].accel_mps2 == -3.0
    assert harness.unit.policy.last_report.accel_mps2 == -3.0
