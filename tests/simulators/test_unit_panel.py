"""What the terminal view shows for a unit core's state: no terminal, no broker.

The core is the real one (tests/firmware/core/unit_harness.py, fake clock); the
recorder plays its board; describe() must say what its LEDs and buzzer say.
"""

from __future__ import annotations

from firmware.core.signals import ASSIGNMENT, BLINK, FLASH, OFF, ON
from protocol import codec, topics
from protocol.messages import Ack, Assignment, SosAck
from simulators.unit_panel import (
    Panel,
    Recorder,
    command_line,
    describe,
    led_names,
    status_keys,
)
from tests.firmware.core.unit_harness import UNIT, Harness, sent

WALL_S = 1_700_000_000.0


class Bench:
    """A core, its recorded board, and commands that reach both, as in the view."""

    def __init__(self, **settings: object) -> None:
        self.harness = Harness(**settings)
        buttons = self.harness.unit.config.buttons
        self.keys = status_keys(buttons)
        self.recorder = Recorder(led_names(buttons), wall=lambda: WALL_S)
        self.seen = 0
        self.record()

    def record(self) -> None:
        new = self.harness.actions[self.seen :]
        self.seen = len(self.harness.actions)
        self.recorder.actions(new, self.harness.clock.ticks())

    def command(self, message: object) -> None:
        """As HandUnit does: the recorder reads the command before the core has it."""
        harness = self.harness
        harness.cmd_id += 1
        message = message.replace(  # type: ignore[attr-defined]
            unit=UNIT, cmd_id=harness.cmd_id, t_ms=1732260000000 + harness.clock.ticks()
        )
        topic, payload = topics.cmd_topic(UNIT), codec.encode(message)
        self.recorder.command(topic, payload, harness.unit)
        harness.run(harness.unit.on_downlink(topic, payload, harness.clock.ticks()))
        self.record()

    def panel(self, **extra: object) -> Panel:
        self.record()
        now = self.harness.clock.ticks()
        return describe(self.harness.unit, self.recorder, now, self.keys, **extra)  # type: ignore[arg-type]


def online() -> Bench:
    bench = Bench()
    bench.harness.link(True)
    bench.harness.fix()
    bench.harness.puback()
    return bench


def test_the_status_keys_follow_the_units_buttons_and_skip_sos() -> None:
    assert status_keys({"b1": "available", "sos": "sos", "b2": "busy"}) == {"1": "b1", "2": "b2"}
    panel = online().panel()
    assert [(lamp.key, lamp.label) for lamp in panel.buttons] == [
        ("1", "available"),
        ("2", "en route"),
        ("3", "on scene"),
        ("4", "busy"),
    ]
    assert panel.status == "none yet: press a status key"
    assert (panel.sos.key, panel.sos.pattern, panel.sos.meaning) == ("s", OFF, "")


def test_a_status_blinks_as_sent_not_yet_received_then_is_steady_once_acknowledged() -> None:
    bench = online()
    bench.harness.press("b1")
    panel = bench.panel()
    lamp = panel.buttons[0]
    assert (lamp.pattern, lamp.looks, lamp.meaning) == (BLINK, "blinking", "sent, not yet received")
    assert panel.status == "available (sent, not yet received)"
    assert [b.pattern for b in panel.buttons[1:]] == [OFF, OFF, OFF]
    change = sent(bench.harness.actions, "status")[-1]
    bench.command(Ack(ranges=[(change.seq, change.seq)]))
    panel = bench.panel()
    assert (panel.buttons[0].pattern, panel.buttons[0].looks) == (ON, "steady")
    assert panel.buttons[0].meaning == "received" and panel.buttons[0].lit
    assert panel.status == "available (received)"
    assert bench.recorder.log[-1].endswith(
        "  ack from the gateway: status available received, 1 message stored"
    )


def test_an_led_is_lit_and_dark_in_turn_as_it_blinks() -> None:
    bench = online()
    bench.harness.press("b2")
    levels = set()
    for _ in range(10):
        bench.harness.advance(0.1)
        levels.add(bench.panel().buttons[1].lit)
    assert levels == {True, False}


def test_an_sos_goes_sent_received_then_acknowledged_by_the_dispatcher() -> None:
    bench = online()
    bench.harness.press("sos", hold_s=2.3)
    panel = bench.panel()
    assert (panel.sos.pattern, panel.sos.meaning) == (FLASH, "sent, on its way")
    alarm = bench.harness.unit.alarm
    bench.command(Ack(ranges=[(alarm.alarm_id, alarm.alarm_id)]))
    panel = bench.panel()
    assert (panel.sos.pattern, panel.sos.meaning) == (BLINK, "received, waiting for a dispatcher")
    assert "SOS received" in bench.recorder.log[-1]
    bench.command(SosAck(alarm_id=alarm.alarm_id, by="amina"))
    panel = bench.panel()
    assert (panel.sos.pattern, panel.sos.meaning) == (ON, "acknowledged by amina")
    assert bench.recorder.log[-1].endswith("SOS acknowledged by amina")


def test_an_assignment_shows_its_incident_and_sounds_the_buzzer_then_falls_quiet() -> None:
    bench = online()
    bench.command(Assignment(incident="INC-7", lat=34.25, lon=-6.57, text="crash on N1"))
    panel = bench.panel()
    assert panel.assignment == "incident INC-7: crash on N1; press 2 (en route) to accept"
    assert panel.buzzer == "sounding: assignment" and panel.buzzing
    bench.harness.advance(0.25)  # in a pause of the pattern: still the assignment's tune
    panel = bench.panel()
    assert panel.buzzer == "sounding: assignment" and not panel.buzzing
    assert (panel.buttons[1].pattern, panel.buttons[1].meaning) == (
        FLASH,
        "assignment: press to accept",
    )
    assert bench.recorder.buzzes[-1][1] == ASSIGNMENT
    bench.harness.advance(5)
    assert bench.panel().buzzer == "quiet (last: assignment, 5 s ago)"
    bench.harness.press("b2")
    assert bench.panel().assignment == "none"


def test_link_position_outbox_and_a_long_press_under_way() -> None:
    bench = Bench()
    panel = bench.panel(dead_zone=True, holding=("SOS", 1200, 2300))
    assert (panel.link.pattern, panel.link.meaning) == (OFF, "down: in a dead zone")
    assert panel.position == "no fix yet" and panel.gps.meaning == "no fix"
    assert panel.holding == "holding SOS: 1.2 / 2.3 s"
    bench.harness.fix(speed=10.0, acc=3.6)
    bench.harness.press("b4")  # no link: the status waits in the outbox
    panel = bench.panel()
    assert panel.position == "34.26100 N 6.58020 W ±4 m 36 km/h"
    assert panel.gps.meaning == "fix" and panel.link.meaning == "connecting"
    assert panel.outbox >= 2  # the status and a position, waiting for the link
    assert panel.holding == ""


def test_a_unit_without_an_sos_button_raises_one_by_holding_a_status_button() -> None:
    buttons = {"b1": "available", "b2": "en_route", "b3": "on_scene", "b4": "busy"}
    bench = Bench(buttons=buttons, sos_hold_button="b4")
    assert "sos" in led_names(buttons) and list(bench.keys) == ["1", "2", "3", "4"]
    bench.harness.link(True)
    bench.harness.press("b4", hold_s=2.3)
    assert bench.panel().sos.meaning == "sent, on its way"


def test_every_command_gets_a_line_and_a_refused_one_is_said() -> None:
    bench = online()
    assert command_line(Ack(ranges=[(5, 7)]), bench.harness.unit) == (
        "ack from the gateway: 3 messages stored"
    )
    bench.recorder.command(topics.cmd_topic(UNIT), b"{not json", bench.harness.unit)
    assert "refused a command" in bench.recorder.log[-1]
    assert bench.recorder.noted == len(bench.recorder.log)
