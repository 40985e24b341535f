"""RpiGpioBoard against FakeGpioModule: what it asks of RPi.GPIO, and the edges it reports."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator

import pytest

from firmware.core.config import DEFAULT_BUTTONS
from firmware.core.signals import BLINK, CLICK, FLASH, ON
from firmware.drivers.gpio_board import DEFAULT_PINS, split_pins
from firmware.drivers.gpio_fake import FakeGpioModule
from firmware.drivers.gpio_rpi import RpiGpioBoard
from firmware.errors import ConfigError

DEFAULT = split_pins(DEFAULT_PINS, DEFAULT_BUTTONS)
BUTTONS = dict(DEFAULT.buttons)
LEDS = dict(DEFAULT.leds)


def _buzzer_pin() -> int:
    assert DEFAULT.buzzer is not None
    return DEFAULT.buzzer


BUZZER_PIN = _buzzer_pin()


def changes(levels: list[int]) -> list[int]:
    """`levels` without repeats: what the pin did, not how often it was written."""
    return [level for index, level in enumerate(levels) if index == 0 or levels[index - 1] != level]


class Edges:
    """The on_edge handler: records (name, level, thread name)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, str]] = []

    def __call__(self, name: str, level: int) -> None:
        self.seen.append((name, level, threading.current_thread().name))

    def levels(self) -> list[tuple[str, int]]:
        return [(name, level) for name, level, _ in self.seen]


@pytest.fixture
def gpio() -> FakeGpioModule:
    return FakeGpioModule()


@pytest.fixture
def edges() -> Edges:
    return Edges()


@pytest.fixture
def board(gpio: FakeGpioModule, edges: Edges) -> Iterator[RpiGpioBoard]:
    board = RpiGpioBoard(BUTTONS, LEDS, BUZZER_PIN, edges, gpio=gpio)
    board.start()
    yield board
    board.close()


def test_the_module_imports_without_rpi_gpio() -> None:
    # This machine has no RPi.GPIO: importing the driver must not need it.
    if importlib.util.find_spec("RPi") is None:
        with pytest.raises(ModuleNotFoundError):
            RpiGpioBoard(BUTTONS, LEDS, BUZZER_PIN, Edges()).start()


def test_buttons_are_bcm_inputs_pulled_up_with_both_edges_and_no_bouncetime(
    board: RpiGpioBoard, gpio: FakeGpioModule
) -> None:
    assert gpio.mode == gpio.BCM
    for pin in BUTTONS.values():
        assert gpio.setups[pin].direction == gpio.IN
        assert gpio.setups[pin].pull_up_down == gpio.PUD_UP
        assert gpio.edge_detects[pin].edge == gpio.BOTH
        assert gpio.edge_detects[pin].bouncetime is None
        assert gpio.input(pin) == 1  # released reads high


def test_leds_and_buzzer_are_outputs_that_start_low(
    board: RpiGpioBoard, gpio: FakeGpioModule
) -> None:
    for pin in [*LEDS.values(), BUZZER_PIN]:
        assert gpio.setups[pin].direction == gpio.OUT
        assert gpio.setups[pin].initial == gpio.LOW
        assert pin not in gpio.edge_detects
    assert set(gpio.setups) == {*BUTTONS.values(), *LEDS.values(), BUZZER_PIN}


def test_edges_reach_on_edge_with_the_name_and_the_level_read(
    board: RpiGpioBoard, gpio: FakeGpioModule, edges: Edges
) -> None:
    gpio.drive_low(BUTTONS["sos"])
    gpio.drive_high(BUTTONS["sos"])
    gpio.drive_low(BUTTONS["b3"])
    assert edges.levels() == [("sos", 0), ("sos", 1), ("b3", 0)]
    # Delivered on the library's callback thread, not the caller's.
    assert {thread for _, _, thread in edges.seen} == {"fake-gpio-callbacks"}


def test_a_failing_on_edge_does_not_stop_later_edges(gpio: FakeGpioModule) -> None:
    seen: list[tuple[str, int]] = []

    def on_edge(name: str, level: int) -> None:
        seen.append((name, level))
        if name == "b1":
            raise ValueError("a bug in the handler")

    board = RpiGpioBoard(BUTTONS, LEDS, BUZZER_PIN, on_edge, gpio=gpio)
    board.start()
    try:
        gpio.drive_low(BUTTONS["b1"])
        gpio.drive_low(BUTTONS["b2"])
        assert seen == [("b1", 0), ("b2", 0)]
        assert gpio.callback_errors == []  # logged by the board, not thrown at RPi.GPIO
    finally:
        board.close()


def test_set_led_is_played_on_the_pin_by_the_thread(
    board: RpiGpioBoard, gpio: FakeGpioModule
) -> None:
    board.set_led("b2", ON)
    assert gpio.wait_for_level(LEDS["b2"], 1)
    board.set_led("sos", FLASH)
    pin = LEDS["sos"]
    # on, off, on: the player keeps toggling the pin by itself.
    assert gpio.wait_for_level(pin, 1) and gpio.wait_for_level(pin, 0)
    assert gpio.wait_for_level(pin, 1)
    assert set(gpio.writes_to(LEDS["b1"])) == {0}  # never touched


def test_buzz_sounds_the_buzzer_once(board: RpiGpioBoard, gpio: FakeGpioModule) -> None:
    board.buzz(CLICK)
    assert gpio.wait_for_level(BUZZER_PIN, 1)
    assert gpio.wait_for_level(BUZZER_PIN, 0)
    assert changes(gpio.writes_to(BUZZER_PIN)) == [0, 1, 0]


def test_unknown_names_are_config_errors(board: RpiGpioBoard) -> None:
    with pytest.raises(ConfigError, match="unknown LED 'gsp'"):
        board.set_led("gsp", ON)
    with pytest.raises(ConfigError, match="unknown LED pattern 'fast'"):
        board.set_led("gps", "fast")
    with pytest.raises(ConfigError, match="unknown buzzer pattern 'beep'"):
        board.buzz("beep")


def test_a_board_without_buzzer_refuses_bad_names_and_ignores_good_ones(
    gpio: FakeGpioModule,
) -> None:
    board = RpiGpioBoard(BUTTONS, LEDS, None, Edges(), gpio=gpio)
    board.start()
    try:
        board.buzz(CLICK)
        with pytest.raises(ConfigError, match="unknown buzzer pattern"):
            board.buzz("beep")
        assert BUZZER_PIN not in gpio.setups
    finally:
        board.close()


def test_a_bad_pin_map_fails_in_the_constructor(gpio: FakeGpioModule) -> None:
    with pytest.raises(ConfigError, match="b1 and b1_led both use GPIO5"):
        RpiGpioBoard({"b1": 5}, {"b1": 5}, None, Edges(), gpio=gpio)
    assert gpio.setups == {}


def test_close_turns_everything_off_and_cleans_up_only_its_pins(gpio: FakeGpioModule) -> None:
    board = RpiGpioBoard(BUTTONS, LEDS, BUZZER_PIN, Edges(), gpio=gpio)
    board.start()
    board.set_led("b1", ON)
    board.set_led("gps", BLINK)
    board.buzz(CLICK)
    assert gpio.wait_for_level(LEDS["b1"], 1)
    board.close()
    assert not board.running
    for pin in [*LEDS.values(), BUZZER_PIN]:
        assert gpio.writes_to(pin)[-1] == 0
    assert sorted(gpio.cleaned) == sorted([*BUTTONS.values(), *LEDS.values(), BUZZER_PIN])
    assert gpio.setups == {} and gpio.edge_detects == {}
    writes = len(gpio.writes)
    board.close()  # twice is harmless
    assert len(gpio.writes) == writes


def test_close_after_a_failed_start_releases_the_pins_it_took(gpio: FakeGpioModule) -> None:
    busy = BUTTONS["b3"]
    gpio.setmode(gpio.BCM)
    gpio.setup(busy, gpio.IN)
    gpio.add_event_detect(busy, gpio.FALLING)  # someone else watches b3's pin
    board = RpiGpioBoard(BUTTONS, LEDS, BUZZER_PIN, Edges(), gpio=gpio)
    with pytest.raises(RuntimeError, match="Conflicting edge detection"):
        board.start()
    board.close()
    assert not board.running
    assert busy in gpio.cleaned  # it was set up again by the board before the failure
    assert set(gpio.cleaned) <= {*BUTTONS.values(), *LEDS.values(), BUZZER_PIN}
    assert all(gpio.writes_to(pin)[-1] == 0 for pin in [*LEDS.values(), BUZZER_PIN])
