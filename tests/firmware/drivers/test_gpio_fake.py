"""The fakes themselves: FakeBoard's scripting helpers and FakeGpioModule's RPi.GPIO manners."""

from __future__ import annotations

import threading

import pytest

from firmware.core.config import DEFAULT_BUTTONS
from firmware.core.signals import BLINK, CLICK, OFF, ON, SOS_SENT
from firmware.drivers.gpio_board import DEFAULT_PINS, split_pins
from firmware.drivers.gpio_fake import FakeBoard, FakeGpioModule
from firmware.errors import ConfigError


class Edges:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def __call__(self, name: str, level: int) -> None:
        self.seen.append((name, level))


DEFAULT = split_pins(DEFAULT_PINS, DEFAULT_BUTTONS)


def started_board(edges: Edges, buzzer_pin: int | None = DEFAULT.buzzer) -> FakeBoard:
    board = FakeBoard(DEFAULT.buttons, DEFAULT.leds, buzzer_pin, edges)
    board.start()
    return board


# -- FakeBoard ----------------------------------------------------------------


def test_press_and_release_are_active_low_edges() -> None:
    edges = Edges()
    board = started_board(edges)
    board.press("sos")
    board.release("sos")
    board.press("b2")
    assert edges.seen == [("sos", 0), ("sos", 1), ("b2", 0)]
    assert board.levels["b2"] == 0 and board.levels["sos"] == 1


def test_pressing_a_pressed_button_is_no_edge() -> None:
    edges = Edges()
    board = started_board(edges)
    board.release("b1")  # already released
    board.press("b1")
    board.press("b1")
    assert edges.seen == [("b1", 0)]


def test_buttons_work_only_between_start_and_close() -> None:
    board = FakeBoard(DEFAULT.buttons, DEFAULT.leds, DEFAULT.buzzer, Edges())
    with pytest.raises(RuntimeError, match="not started"):
        board.press("b1")
    board.start()
    board.close()
    with pytest.raises(RuntimeError, match="not started"):
        board.press("b1")


def test_leds_show_the_current_pattern_and_buzzes_the_history() -> None:
    board = started_board(Edges())
    assert set(board.leds.values()) == {OFF}
    board.set_led("b1", BLINK)
    board.set_led("b1", ON)
    board.set_led("gps", BLINK)
    board.buzz(CLICK)
    board.buzz(SOS_SENT)
    assert board.leds["b1"] == ON and board.leds["gps"] == BLINK
    assert board.buzzes == [CLICK, SOS_SENT]
    board.close()
    assert set(board.leds.values()) == {OFF}
    assert board.closed


def test_a_fake_board_refuses_what_the_real_one_refuses() -> None:
    board = started_board(Edges(), buzzer_pin=None)
    with pytest.raises(ConfigError, match="unknown button 'b5'"):
        board.press("b5")
    with pytest.raises(ConfigError, match="unknown LED 'b5'"):
        board.set_led("b5", ON)
    with pytest.raises(ConfigError, match="unknown LED pattern 'dim'"):
        board.set_led("b1", "dim")
    with pytest.raises(ConfigError, match="unknown buzzer pattern 'beep'"):
        board.buzz("beep")
    board.buzz(CLICK)
    assert board.buzzes == []  # no buzzer wired, nothing heard
    with pytest.raises(ConfigError, match="both use GPIO5"):
        FakeBoard({"b1": 5}, {"b1": 5}, None, Edges())


def test_a_fake_board_defaults_to_the_default_unit_and_keeps_every_edge() -> None:
    board = FakeBoard()
    board.start()
    board.press("b4")
    board.release("b4")
    assert board.edges == [("b4", 0), ("b4", 1)]
    assert set(board.leds) == set(DEFAULT.leds)
    assert board.buzzer_pin == DEFAULT.buzzer
    board.buzz(CLICK)
    assert board.buzzes == [CLICK]


# -- FakeGpioModule -----------------------------------------------------------


def test_setup_needs_a_numbering_mode_and_output_needs_an_output() -> None:
    gpio = FakeGpioModule()
    with pytest.raises(RuntimeError, match="setmode"):
        gpio.setup(5, gpio.IN)
    gpio.setmode(gpio.BCM)
    gpio.setup(5, gpio.IN, pull_up_down=gpio.PUD_UP)
    with pytest.raises(RuntimeError, match="OUTPUT"):
        gpio.output(5, gpio.HIGH)
    with pytest.raises(RuntimeError, match="not been set up"):
        gpio.input(6)


def test_inputs_read_their_pull_and_outputs_record_their_writes() -> None:
    gpio = FakeGpioModule()
    gpio.setmode(gpio.BCM)
    gpio.setup(5, gpio.IN, pull_up_down=gpio.PUD_UP)
    gpio.setup(6, gpio.IN, pull_up_down=gpio.PUD_DOWN)
    gpio.setup(12, gpio.OUT, initial=gpio.LOW)
    gpio.output(12, True)
    gpio.output(12, gpio.LOW)
    assert (gpio.input(5), gpio.input(6)) == (1, 0)
    assert gpio.writes_to(12) == [0, 1, 0]
    assert gpio.wait_for_level(12, 0, timeout_s=0)
    assert not gpio.wait_for_level(12, 1, timeout_s=0.01)


def test_drive_low_calls_the_callback_from_the_callback_thread() -> None:
    gpio = FakeGpioModule()
    gpio.setmode(gpio.BCM)
    gpio.setup(5, gpio.IN, pull_up_down=gpio.PUD_UP)
    gpio.setup(6, gpio.IN, pull_up_down=gpio.PUD_UP)
    calls: list[tuple[int, int, str]] = []

    def callback(channel: int) -> None:
        calls.append((channel, gpio.input(channel), threading.current_thread().name))

    gpio.add_event_detect(5, gpio.BOTH, callback=callback)
    gpio.add_event_detect(6, gpio.FALLING, callback=callback)
    gpio.drive_low(5)
    gpio.drive_low(5)  # no change, no edge
    gpio.drive_high(5)
    gpio.drive_low(6)
    gpio.drive_high(6)  # a rising edge: not watched on 6
    assert [(pin, level) for pin, level, _ in calls] == [(5, 0), (5, 1), (6, 0)]
    assert {thread for _, _, thread in calls} == {"fake-gpio-callbacks"}
    with pytest.raises(RuntimeError, match="Conflicting edge detection"):
        gpio.add_event_detect(5, gpio.BOTH, callback=callback)
    gpio.cleanup()
    assert sorted(gpio.cleaned) == [5, 6]


def test_a_raising_callback_is_recorded_and_the_thread_goes_on() -> None:
    gpio = FakeGpioModule()
    gpio.setmode(gpio.BCM)
    gpio.setup(5, gpio.IN, pull_up_down=gpio.PUD_UP)
    gpio.setup(6, gpio.IN, pull_up_down=gpio.PUD_UP)
    called: list[int] = []

    def explode(channel: int) -> None:
        raise OSError("boom")

    gpio.add_event_detect(5, gpio.BOTH, callback=explode)
    gpio.add_event_detect(6, gpio.BOTH, callback=called.append)
    gpio.drive_low(5)
    gpio.drive_low(6)
    assert called == [6]
    assert [str(error) for error in gpio.callback_errors] == ["boom"]
    gpio.cleanup([5, 6])
