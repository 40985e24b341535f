"""The shared part of the GPIO boards: pin map checks, the pattern player, its thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from firmware.core.config import DEFAULT_BUTTONS
from firmware.core.signals import (
    ACKNOWLEDGED,
    BLINK,
    BUZZER_PATTERNS,
    CLICK,
    FLASH,
    GPS_LED,
    LINK_LED,
    OFF,
    ON,
    SOS_LED,
    SOS_SENT,
)
from firmware.drivers.gpio_board import (
    BUZZER,
    DEFAULT_PINS,
    HEADER_PINS,
    PatternPlayer,
    PatternThread,
    check_pins,
    split_pins,
)
from firmware.errors import ConfigError

LEDS = ["b1", "sos"]


def lit(player: PatternPlayer, name: str, ticks: range) -> list[bool]:
    return [player.levels(tick)[name] for tick in ticks]


# -- the pin map --------------------------------------------------------------


DEFAULT = split_pins(DEFAULT_PINS, DEFAULT_BUTTONS)


def test_the_default_pins_cover_the_cores_buttons_and_leds() -> None:
    assert set(DEFAULT.buttons) == set(DEFAULT_BUTTONS)
    assert set(DEFAULT.leds) == set(DEFAULT_BUTTONS) | {SOS_LED, GPS_LED, LINK_LED}
    assert DEFAULT.buttons["sos"] == 26 and DEFAULT.leds["sos"] == 25 and DEFAULT.buzzer == 17
    assert len(set(DEFAULT_PINS.values())) == len(DEFAULT_PINS)


def test_the_default_pins_leave_the_gps_uart_i2c_spi0_and_eeprom_free() -> None:
    assert set(DEFAULT_PINS.values()).isdisjoint({0, 1, 2, 3, 7, 8, 9, 10, 11, 14, 15})


def test_a_units_pins_override_the_defaults_key_by_key() -> None:
    pins = split_pins({**DEFAULT_PINS, "b1": 22, "gps_led": 27}, DEFAULT_BUTTONS)
    assert pins.buttons["b1"] == 22 and pins.leds["gps"] == 27
    assert pins.buttons["b2"] == DEFAULT.buttons["b2"]


def test_a_unit_without_sos_button_leaves_the_default_sos_pin_unused() -> None:
    pins = split_pins(DEFAULT_PINS, ["b1", "b2", "b3", "b4"])  # SOS by a long press
    assert "sos" not in pins.buttons
    assert "sos" in pins.leds  # the SOS LED is still needed


@pytest.mark.parametrize(
    ("pins", "buttons", "message"),
    [
        ({**DEFAULT_PINS, "horn": 4}, DEFAULT_BUTTONS, r"pins.horn: not a button of this unit"),
        (dict(DEFAULT_PINS), [*DEFAULT_BUTTONS, "b5"], r"no pin for b5, b5_led$"),
        ({**DEFAULT_PINS, "b5_led": 4}, [*DEFAULT_BUTTONS, "b5"], r"no pin for b5$"),
        (dict(DEFAULT_PINS, link_led=None), DEFAULT_BUTTONS, r"pins.link_led: None is not"),
        ({**DEFAULT_PINS, "gps_led": 12}, DEFAULT_BUTTONS, r"b1_led and gps_led both use GPIO12"),
    ],
)
def test_a_bad_pins_table_names_the_key(
    pins: dict[str, int], buttons: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        split_pins(pins, buttons)


def test_the_header_map_has_every_bcm_gpio_once() -> None:
    assert sorted(HEADER_PINS) == list(range(28))
    assert len(set(HEADER_PINS.values())) == 28


@pytest.mark.parametrize(
    ("buttons", "leds", "buzzer", "message"),
    [
        ({"b1": 5}, {"b1": 5}, None, "b1 and b1_led both use GPIO5"),
        ({"b1": 5}, {"b1": 6}, 5, "b1 and buzzer both use GPIO5"),
        ({"b1": 28}, {}, None, "pins.b1: 28 is not a BCM GPIO"),
        ({"b1": "5"}, {}, None, "pins.b1: '5' is not a BCM GPIO"),
        ({}, {"buzzer": 6}, None, "an LED may not be called 'buzzer'"),
    ],
)
def test_a_bad_pin_map_names_the_culprit(
    buttons: dict[str, int], leds: dict[str, int], buzzer: int | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_pins(buttons, leds, buzzer)


# -- LED patterns -------------------------------------------------------------


def test_leds_start_off_and_never_change() -> None:
    player = PatternPlayer(LEDS)
    assert player.levels(0) == {"b1": False, "sos": False, BUZZER: False}
    assert player.next_change_ms(0) is None


def test_steady_on_and_off() -> None:
    player = PatternPlayer(LEDS)
    player.set_led("b1", ON, 100)
    assert lit(player, "b1", range(100, 5000, 7)) == [True] * len(range(100, 5000, 7))
    assert player.next_change_ms(200) is None
    player.set_led("b1", OFF, 5000)
    assert not player.levels(5001)["b1"]
    assert player.pattern("b1") == OFF


def test_blink_is_500_ms_on_500_ms_off_from_when_it_was_set() -> None:
    player = PatternPlayer(LEDS)
    player.set_led("b1", BLINK, 1000)
    assert lit(player, "b1", range(1000, 3000, 250)) == [True, True, False, False] * 2
    assert player.levels(1499)["b1"] and not player.levels(1500)["b1"]
    assert player.levels(2000)["b1"]
    assert not player.levels(3000)["sos"]  # the other LED is untouched


def test_flash_is_four_times_a_second() -> None:
    player = PatternPlayer(LEDS)
    player.set_led("sos", FLASH, 0)
    levels = lit(player, "sos", range(0, 1000, 125))
    assert levels == [True, False] * 4


def test_next_change_is_the_next_edge_of_the_soonest_led() -> None:
    player = PatternPlayer(LEDS)
    player.set_led("b1", BLINK, 0)
    assert player.next_change_ms(0) == 500
    assert player.next_change_ms(499) == 500
    assert player.next_change_ms(500) == 1000
    assert player.next_change_ms(1200) == 1500
    player.set_led("sos", FLASH, 1210)
    assert player.next_change_ms(1210) == 1335
    assert player.next_change_ms(1490) == 1500  # b1 goes off before sos comes back on


def test_setting_the_same_pattern_again_keeps_the_phase() -> None:
    player = PatternPlayer(LEDS)
    player.set_led("b1", BLINK, 0)
    player.set_led("b1", BLINK, 300)  # the core repeats patterns that did not change
    assert not player.levels(600)["b1"]
    player.set_led("b1", FLASH, 600)
    player.set_led("b1", BLINK, 700)  # a new pattern starts with its "on" phase
    assert player.levels(700)["b1"]
    assert player.next_change_ms(700) == 1200


def test_unknown_led_or_pattern_is_a_config_error() -> None:
    player = PatternPlayer(LEDS)
    with pytest.raises(ConfigError, match=r"unknown LED 'b9'; this board has b1, sos"):
        player.set_led("b9", ON, 0)
    with pytest.raises(ConfigError, match=r"unknown LED pattern 'strobe'; use one of blink"):
        player.set_led("b1", "strobe", 0)
    with pytest.raises(ConfigError, match=r"unknown buzzer pattern 'siren'; use one of ack"):
        player.buzz("siren", 0)


# -- buzzer patterns ----------------------------------------------------------


def test_a_buzzer_pattern_plays_once_then_stays_silent() -> None:
    player = PatternPlayer(LEDS)
    player.buzz(ACKNOWLEDGED, 1000)  # 120 on, 120 off, 120 on
    assert (
        lit(player, BUZZER, range(1000, 1480, 60))
        == [True] * 2 + [False] * 2 + [True] * 2 + [False] * 2
    )
    assert player.next_change_ms(1000) == 1120
    assert player.next_change_ms(1120) == 1240
    assert player.next_change_ms(1300) == 1360
    assert player.next_change_ms(1360) is None
    assert not any(lit(player, BUZZER, range(1360, 10000, 13)))


def test_every_buzzer_pattern_sounds_exactly_its_table() -> None:
    for name, durations in BUZZER_PATTERNS.items():
        player = PatternPlayer([])
        player.buzz(name, 0)
        expected: list[bool] = []
        for index, duration in enumerate(durations):
            expected += [index % 2 == 0] * duration
        assert lit(player, BUZZER, range(sum(durations) + 50)) == expected + [False] * 50, name


def test_a_new_buzz_replaces_the_one_sounding() -> None:
    player = PatternPlayer(LEDS)
    player.buzz(SOS_SENT, 0)  # 400 on, 150 off, ...
    player.buzz(CLICK, 100)  # 40 on
    assert player.levels(139)[BUZZER]
    assert not player.levels(140)[BUZZER]
    assert player.next_change_ms(140) is None
    assert not player.levels(600)[BUZZER]  # the rest of the SOS pattern is gone


def test_next_change_mixes_leds_and_buzzer() -> None:
    player = PatternPlayer(LEDS)
    player.set_led("b1", BLINK, 0)
    player.buzz(CLICK, 100)
    assert player.next_change_ms(100) == 140
    assert player.next_change_ms(140) == 500


def wait_until(condition: Callable[[], bool], timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# -- the thread -----------------------------------------------------------------


class Recorder:
    """Collects (name, level) writes; lets a test wait for one."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, bool]] = []
        self.changed = threading.Condition()

    def write(self, name: str, level: bool) -> None:
        with self.changed:
            self.writes.append((name, level))
            self.changed.notify_all()

    def wait_for(self, *expected: tuple[str, bool], since: int = 0, timeout_s: float = 2.0) -> bool:
        """Wait until `expected` were written in this order, after the first `since` writes."""

        def seen() -> bool:
            found = iter(self.writes[since:])
            return all(item in found for item in expected)  # in this order

        with self.changed:
            return self.changed.wait_for(seen, timeout_s)


def test_the_thread_writes_initial_levels_and_then_only_changes() -> None:
    recorder = Recorder()
    thread = PatternThread(PatternPlayer(LEDS), recorder.write)
    thread.start()
    try:
        assert recorder.wait_for(("b1", False), ("sos", False), (BUZZER, False))
        thread.set_led("b1", ON)
        assert recorder.wait_for(("b1", True))
        thread.set_led("b1", ON)
        thread.buzz(CLICK)
        assert recorder.wait_for((BUZZER, True), (BUZZER, False))
        assert recorder.writes.count(("b1", True)) == 1
    finally:
        thread.stop()
    assert not thread.running


def test_the_thread_blinks_and_sleeps_between_changes() -> None:
    recorder = Recorder()
    thread = PatternThread(PatternPlayer(LEDS), recorder.write)
    thread.start()
    try:
        thread.set_led("sos", FLASH)
        toggles = [("sos", True), ("sos", False)] * 3
        assert recorder.wait_for(*toggles)
        # About one wake-up per change: no busy loop (a 1 kHz poll would be hundreds).
        assert thread.wakeups < 20
        thread.set_led("sos", OFF)
        assert wait_until(lambda: thread.idle)
        assert recorder.writes[-1] == ("sos", False)
        settled = thread.wakeups
        count = len(recorder.writes)
        # Nothing blinks: the thread waits for a notification, it does not poll.
        assert not recorder.wait_for(("sos", True), since=count, timeout_s=0.2)
        assert thread.wakeups == settled
    finally:
        thread.stop()
    assert not thread.running


def test_stop_ends_a_sleeping_thread_at_once() -> None:
    thread = PatternThread(PatternPlayer(LEDS), lambda name, level: None)
    thread.start()
    thread.set_led("b1", BLINK)
    thread.stop(timeout_s=2.0)
    assert not thread.running
