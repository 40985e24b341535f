"""Debounce and long press (portable: also runs under MicroPython)."""

from firmware.core.buttons import HOLD, PRESS, RELEASE, Buttons

MICROPYTHON = True


def kinds(events):
    return [(event.kind, event.pin) for event in events]


def test_a_clean_press_registers_after_the_debounce_time():
    buttons = Buttons(["b1"], debounce_ms=30)
    assert buttons.on_edge("b1", True, 1000) == []
    assert buttons.next_deadline_ms() == 1030
    assert buttons.on_tick(1029) == []
    events = buttons.on_tick(1030)
    assert kinds(events) == [(PRESS, "b1")]
    assert events[0].tick_ms == 1000  # the press dates from the edge, not from the tick
    assert buttons.is_pressed("b1")


def test_contact_bounce_is_one_press():
    buttons = Buttons(["b1"], debounce_ms=30)
    events = []
    for tick, level in ((1000, True), (1003, False), (1006, True), (1011, False), (1015, True)):
        events += buttons.on_edge("b1", level, tick)
    events += buttons.on_tick(1100)
    assert kinds(events) == [(PRESS, "b1")]
    assert events[0].tick_ms == 1015


def test_a_spike_shorter_than_the_debounce_is_ignored():
    buttons = Buttons(["b1"], debounce_ms=30)
    events = buttons.on_edge("b1", True, 1000) + buttons.on_edge("b1", False, 1010)
    events += buttons.on_tick(2000)
    assert events == []
    assert not buttons.is_pressed("b1")


def test_release_reports_how_long_it_was_held():
    buttons = Buttons(["b1"], debounce_ms=30)
    buttons.on_edge("b1", True, 1000)
    buttons.on_tick(1040)
    buttons.on_edge("b1", False, 1500)
    events = buttons.on_tick(1540)
    assert kinds(events) == [(RELEASE, "b1")]
    assert events[0].held_ms == 500


def test_holds_fire_once_each_while_held():
    buttons = Buttons(["sos"], debounce_ms=30, holds_ms={"sos": (3000, 2000)})
    buttons.on_edge("sos", True, 0)
    assert kinds(buttons.on_tick(30)) == [(PRESS, "sos")]
    assert buttons.next_deadline_ms() == 2000
    assert buttons.on_tick(1999) == []
    first = buttons.on_tick(2000)
    assert kinds(first) == [(HOLD, "sos")] and first[0].held_ms == 2000
    assert buttons.on_tick(2500) == []
    second = buttons.on_tick(3100)
    assert kinds(second) == [(HOLD, "sos")] and second[0].held_ms == 3000
    assert buttons.on_tick(9000) == []
    assert buttons.next_deadline_ms() is None


def test_a_hold_nobody_ticked_through_still_fires_before_the_release():
    buttons = Buttons(["b1"], debounce_ms=30, holds_ms={"b1": (2000,)})
    buttons.on_edge("b1", True, 0)
    buttons.on_tick(30)
    events = buttons.on_edge("b1", False, 2500)  # no tick between 30 and 2500
    events += buttons.on_tick(2600)
    assert kinds(events) == [(HOLD, "b1"), (RELEASE, "b1")]


def test_buttons_are_independent():
    buttons = Buttons(["b1", "b2"], debounce_ms=30)
    buttons.on_edge("b1", True, 0)
    buttons.on_edge("b2", True, 10)
    events = buttons.on_tick(35)
    assert kinds(events) == [(PRESS, "b1")]
    assert kinds(buttons.on_tick(40)) == [(PRESS, "b2")]
