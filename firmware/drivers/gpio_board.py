"""What every GPIO board shares: the default pin map, the pattern player and its thread.

A board (RPi.GPIO on a Pi in gpio_rpi.py, the fake in gpio_fake.py) reads
the status buttons and shows the core's LED and buzzer patterns. The core
only names a pattern; `PatternPlayer` turns the timing tables of
firmware/core/signals.py into pin levels over time, as pure logic with the
time passed in, and `PatternThread` plays it on real outputs from one
background thread that sleeps until the next output has to change.

CPython only (typing, threading); imports the core's tables and errors,
never a hardware library. docs/wiring.md shows `DEFAULT_PINS` on the header;
`split_pins` turns that flat map (with a unit's overrides) into a board's arguments.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from firmware.core.clock import MonotonicClock
from firmware.core.signals import (
    BUZZER_PATTERNS,
    GPS_LED,
    LED_PATTERNS,
    LINK_LED,
    OFF,
    SOS_LED,
)
from firmware.errors import ConfigError

# Called with the button's name and the pin level read after the edge
# (active low: 0 = pressed). Runs on the GPIO library's callback thread.
EdgeHandler = Callable[[str, int], None]

# The key of the buzzer in PatternPlayer.levels(); no LED may take this name.
BUZZER = "buzzer"

# BCM GPIO number -> physical pin of the 40-pin header (every Pi since the B+).
HEADER_PINS = MappingProxyType(
    {
        2: 3, 3: 5, 4: 7, 14: 8, 15: 10, 17: 11, 18: 12, 27: 13, 22: 15, 23: 16,
        24: 18, 10: 19, 9: 21, 25: 22, 11: 23, 8: 24, 7: 26, 0: 27, 1: 28, 5: 29,
        6: 31, 12: 32, 13: 33, 19: 35, 16: 36, 26: 37, 20: 38, 21: 40,
    }
)  # fmt: skip


@dataclass(frozen=True)
class PinMap:
    """Which BCM GPIO each logical button, LED and the buzzer uses (None: no buzzer)."""

    buttons: Mapping[str, int]
    leds: Mapping[str, int]
    buzzer: int | None


LED_SUFFIX = "_led"

# The default wiring of a unit, as a flat map that a unit's `[pins]` table
# overrides key by key (docs/wiring.md draws it): a button by its name in
# firmware.core.config.DEFAULT_BUTTONS, an LED by the core's LED name plus
# "_led", and "buzzer". The buttons and their LEDs sit on header pins 29-40, so
# one 12-way connector carries the handlebar harness with three grounds of
# its own. Pins with a second use stay free: the HAT EEPROM (GPIO0/1), I2C
# (GPIO2/3), SPI0 (GPIO7-11) and the GPS UART (GPIO14/15). Every output is on
# a pin pulled down at power-on (GPIO9-27 on the BCM283x), so no LED or buzzer
# comes on while booting.
DEFAULT_PINS: Mapping[str, int] = MappingProxyType(
    {
        "b1": 5,
        "b2": 6,
        "b3": 13,
        "b4": 19,
        "sos": 26,
        "b1_led": 12,
        "b2_led": 16,
        "b3_led": 20,
        "b4_led": 21,
        "sos_led": 25,
        "gps_led": 23,
        "link_led": 24,
        BUZZER: 17,
    }
)
# The LEDs the core drives besides one per button (firmware.core.unit).
CORE_LEDS = (SOS_LED, GPS_LED, LINK_LED)


def split_pins(pins: Mapping[str, int], buttons: Iterable[str]) -> PinMap:
    """Sort a flat map (DEFAULT_PINS updated with a unit's `[pins]`) into a checked PinMap.

    `buttons` are the core's button names (UnitConfig.buttons). Every button
    needs a pin and an LED, and so do the core's own LEDs, because the core
    sets them all; a default button the unit does not use is left out.
    """
    buttons = list(buttons)
    button_pins: dict[str, int] = {}
    led_pins: dict[str, int] = {}
    for key, pin in pins.items():
        if key.endswith(LED_SUFFIX):
            led_pins[key[: -len(LED_SUFFIX)]] = pin
        elif key in buttons:
            button_pins[key] = pin
        elif key != BUZZER and key not in DEFAULT_PINS:
            raise ConfigError(
                f"pins.{key}: not a button of this unit ({', '.join(buttons)}), "
                f"an LED (<name>{LED_SUFFIX}) or {BUZZER!r}"
            )
    missing = [name for name in buttons if name not in button_pins]
    missing += [name + LED_SUFFIX for name in [*buttons, *CORE_LEDS] if name not in led_pins]
    if missing:
        raise ConfigError(f"pins: no pin for {', '.join(dict.fromkeys(missing))}")
    pin_map = PinMap(button_pins, led_pins, pins.get(BUZZER))
    check_pins(pin_map.buttons, pin_map.leds, pin_map.buzzer)
    return pin_map


def check_pins(buttons: Mapping[str, int], leds: Mapping[str, int], buzzer: int | None) -> None:
    """Raise ConfigError unless every pin is a header GPIO used once, and names are sound."""
    uses: dict[int, str] = {}
    # Named by their keys in a unit's [pins] table (see DEFAULT_PINS).
    named = list(buttons.items())
    named += [(name + LED_SUFFIX, pin) for name, pin in leds.items()]
    if buzzer is not None:
        named.append((BUZZER, buzzer))
    for role, pin in named:
        if type(pin) is not int or pin not in HEADER_PINS:
            raise ConfigError(f"pins.{role}: {pin!r} is not a BCM GPIO of the 40-pin header")
        if pin in uses:
            raise ConfigError(f"pins: {uses[pin]} and {role} both use GPIO{pin}")
        uses[pin] = role
    if BUZZER in leds:
        raise ConfigError(f"pins: an LED may not be called {BUZZER!r}")


def led_pattern(pattern: str) -> tuple[int, ...] | None:
    """The timing of an LED pattern: None steady on, () off, else (on_ms, off_ms)."""
    try:
        return LED_PATTERNS[pattern]
    except KeyError:
        known = ", ".join(sorted(LED_PATTERNS))
        raise ConfigError(f"unknown LED pattern {pattern!r}; use one of {known}") from None


def buzzer_pattern(pattern: str) -> tuple[int, ...]:
    """The on/off durations of a buzzer pattern, starting with on."""
    try:
        return BUZZER_PATTERNS[pattern]
    except KeyError:
        known = ", ".join(sorted(BUZZER_PATTERNS))
        raise ConfigError(f"unknown buzzer pattern {pattern!r}; use one of {known}") from None


def check_led(leds: Iterable[str], name: str) -> None:
    if name not in leds:
        known = ", ".join(sorted(leds))
        raise ConfigError(f"unknown LED {name!r}; this board has {known}")


class GpioBoard(Protocol):
    """The interface of a board; runtimes and simulators depend on this alone."""

    def start(self) -> None: ...

    def set_led(self, name: str, pattern: str) -> None: ...

    def buzz(self, pattern: str) -> None: ...

    def close(self) -> None: ...


class _Led:
    def __init__(self) -> None:
        self.pattern = OFF
        self.timing: tuple[int, ...] | None = ()
        self.start_ms = 0


class PatternPlayer:
    """LED and buzzer levels as a function of time; pure, the caller passes `now_ms`.

    LED patterns repeat from the moment they are set; setting the pattern an
    LED already shows keeps its phase, because the core repeats unchanged
    patterns (a blink must not stutter). A buzzer pattern plays once; a new
    one replaces whatever was sounding.
    """

    def __init__(self, leds: Iterable[str]) -> None:
        self._leds = {name: _Led() for name in leds}
        if BUZZER in self._leds:
            raise ConfigError(f"pins: an LED may not be called {BUZZER!r}")
        self._buzz: tuple[int, ...] = ()
        self._buzz_start_ms = 0

    def pattern(self, name: str) -> str:
        check_led(self._leds, name)
        return self._leds[name].pattern

    def set_led(self, name: str, pattern: str, now_ms: int) -> None:
        check_led(self._leds, name)
        timing = led_pattern(pattern)
        led = self._leds[name]
        if pattern != led.pattern:
            led.pattern, led.timing, led.start_ms = pattern, timing, now_ms

    def buzz(self, pattern: str, now_ms: int) -> None:
        self._buzz = buzzer_pattern(pattern)
        self._buzz_start_ms = now_ms

    def levels(self, now_ms: int) -> dict[str, bool]:
        """Every LED's level, and the buzzer's under the key BUZZER."""
        levels = {name: _led_level(led, now_ms) for name, led in self._leds.items()}
        levels[BUZZER] = _buzz_state(self._buzz, now_ms - self._buzz_start_ms)[0]
        return levels

    def next_change_ms(self, now_ms: int) -> int | None:
        """The first tick after `now_ms` when some level changes; None if none ever will."""
        changes = [_led_change(led, now_ms) for led in self._leds.values()]
        elapsed = now_ms - self._buzz_start_ms
        buzz_change = _buzz_state(self._buzz, elapsed)[1]
        changes.append(None if buzz_change is None else now_ms + buzz_change - elapsed)
        pending = [change for change in changes if change is not None]
        return min(pending) if pending else None


def _led_level(led: _Led, now_ms: int) -> bool:
    if led.timing is None or not led.timing:
        return led.timing is None
    on_ms, off_ms = led.timing
    return max(0, now_ms - led.start_ms) % (on_ms + off_ms) < on_ms


def _led_change(led: _Led, now_ms: int) -> int | None:
    if led.timing is None or not led.timing:
        return None  # steady on or off
    on_ms, off_ms = led.timing
    phase = max(0, now_ms - led.start_ms) % (on_ms + off_ms)
    return now_ms + (on_ms - phase if phase < on_ms else on_ms + off_ms - phase)


def _buzz_state(durations: tuple[int, ...], elapsed_ms: int) -> tuple[bool, int | None]:
    """(sounding, elapsed ms of the next change or None) at `elapsed_ms` into a pattern."""
    if elapsed_ms < 0:
        elapsed_ms = 0
    end_ms = 0
    for index, duration in enumerate(durations):
        end_ms += duration
        if elapsed_ms < end_ms:
            return index % 2 == 0, end_ms
    return False, None


class PatternThread:
    """Plays a PatternPlayer on outputs from one thread that sleeps between changes.

    `write(name, level)` is called from the thread only, and only when a
    level differs from the last one written; `clock()` returns ms ticks.
    A failing write ends the thread (and threading's excepthook logs it);
    `running` tells a watchdog.
    """

    def __init__(
        self,
        player: PatternPlayer,
        write: Callable[[str, bool], None],
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._player = player
        self._write = write
        self._clock = clock or MonotonicClock().ticks
        self._changed = threading.Condition()
        self._stopping = False
        self._dirty = False  # set_led/buzz since the levels were last computed
        self._thread: threading.Thread | None = None
        self._sleeping = False
        self.wakeups = 0  # loop passes, for tests and diagnostics: no busy loop

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def idle(self) -> bool:
        """The thread is asleep with every change so far written out."""
        with self._changed:
            return self._sleeping and not self._dirty

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="gpio-patterns", daemon=True)
        self._thread.start()

    def set_led(self, name: str, pattern: str) -> None:
        with self._changed:
            self._player.set_led(name, pattern, self._clock())
            self._dirty = True
            self._changed.notify()

    def buzz(self, pattern: str) -> None:
        with self._changed:
            self._player.buzz(pattern, self._clock())
            self._dirty = True
            self._changed.notify()

    def stop(self, timeout_s: float = 2.0) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        written: dict[str, bool] = {}
        while True:
            with self._changed:
                if self._stopping:
                    return
                self.wakeups += 1
                self._dirty = False
                now_ms = self._clock()
                levels = self._player.levels(now_ms)
                next_ms = self._player.next_change_ms(now_ms)
            for name, level in levels.items():
                if written.get(name) != level:
                    self._write(name, level)
                    written[name] = level
            with self._changed:
                if self._stopping or self._dirty:
                    continue  # changed while writing: no notify is coming for that
                # Sleep until the next change, or until set_led/buzz/stop notify;
                # at least 1 ms, as ticks are whole ms and a wait may end early.
                timeout_s = None if next_ms is None else max(next_ms - self._clock(), 1) / 1000
                self._sleeping = True
                self._changed.wait(timeout_s)
                self._sleeping = False
