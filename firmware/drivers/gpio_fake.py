"""Fakes of the GPIO board, for tests and simulators: no Pi, no RPi.GPIO.

- `FakeBoard` has RpiGpioBoard's interface and records what the core asked
  for (`leds`: name -> current pattern, `buzzes`: patterns in order); a test
  or simulator presses buttons with `press("sos")` / `release("sos")`.
  Its pins default to the default unit's, so `FakeBoard(on_edge=...)` will do.
- `FakeGpioModule` stands in for the RPi.GPIO module itself, to test
  RpiGpioBoard: it records setup calls and output levels per pin, and
  `drive_low(pin)` / `drive_high(pin)` (named after gpiozero's mock pins)
  change an input and call its edge callback from a callback thread, as the
  real library does.

CPython only; imports nothing from a hardware library.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from firmware.core.config import DEFAULT_BUTTONS
from firmware.core.signals import OFF
from firmware.drivers.gpio_board import (
    DEFAULT_PINS,
    EdgeHandler,
    buzzer_pattern,
    check_led,
    check_pins,
    led_pattern,
    split_pins,
)
from firmware.errors import ConfigError

PRESSED = 0  # active low: the button closes the pin to GND
RELEASED = 1
CALLBACK_TIMEOUT_SECONDS = 2.0
_DEFAULT = split_pins(DEFAULT_PINS, DEFAULT_BUTTONS)


class FakeBoard:
    """A board whose buttons are pressed by calls; `on_edge` runs on the caller's thread.

    Without pins it has the default unit's (DEFAULT_PINS); every edge is also
    kept in `edges` as (name, level), so `on_edge` may be left out.
    """

    def __init__(
        self,
        buttons: Mapping[str, int] | None = None,
        leds: Mapping[str, int] | None = None,
        buzzer_pin: int | None = _DEFAULT.buzzer,
        on_edge: EdgeHandler | None = None,
    ) -> None:
        buttons = _DEFAULT.buttons if buttons is None else buttons
        leds = _DEFAULT.leds if leds is None else leds
        check_pins(buttons, leds, buzzer_pin)
        self.buttons = dict(buttons)
        self.buzzer_pin = buzzer_pin
        self.leds: dict[str, str] = dict.fromkeys(leds, OFF)
        self.buzzes: list[str] = []
        self.levels: dict[str, int] = dict.fromkeys(buttons, RELEASED)
        self.edges: list[tuple[str, int]] = []
        self.started = False
        self.closed = False
        self._on_edge = on_edge

    def start(self) -> None:
        self.started = True

    def set_led(self, name: str, pattern: str) -> None:
        check_led(self.leds, name)
        led_pattern(pattern)
        self.leds[name] = pattern

    def buzz(self, pattern: str) -> None:
        buzzer_pattern(pattern)
        if self.buzzer_pin is not None:
            self.buzzes.append(pattern)

    def close(self) -> None:
        self.leds = dict.fromkeys(self.leds, OFF)
        self.closed = True

    def press(self, name: str) -> None:
        self._drive(name, PRESSED)

    def release(self, name: str) -> None:
        self._drive(name, RELEASED)

    def _drive(self, name: str, level: int) -> None:
        if name not in self.buttons:
            known = ", ".join(sorted(self.buttons))
            raise ConfigError(f"unknown button {name!r}; this board has {known}")
        if not self.started or self.closed:
            raise RuntimeError(f"FakeBoard: button {name!r} used while the board is not started")
        if self.levels[name] != level:  # like the real pin: no change, no edge
            self.levels[name] = level
            self.edges.append((name, level))
            if self._on_edge is not None:
                self._on_edge(name, level)


@dataclass
class PinSetup:
    """One GPIO.setup() call."""

    direction: int
    pull_up_down: int
    initial: int | None


@dataclass
class EdgeDetect:
    """One GPIO.add_event_detect() call."""

    edge: int
    callback: Callable[[int], object] | None
    bouncetime: int | None


class FakeGpioModule:
    """A stand-in for the RPi.GPIO module, with RPi.GPIO's constants and checks.

    Readable state: `mode`, `setups` (pin -> PinSetup), `edge_detects`
    (pin -> EdgeDetect), `levels` (pin -> current level, inputs and outputs),
    `writes` (every (pin, level) output in order), `cleaned` (pins cleaned
    up), `callback_errors` (exceptions the callbacks raised).
    """

    BOARD = 10
    BCM = 11
    OUT = 0
    IN = 1
    LOW = 0
    HIGH = 1
    PUD_OFF = 20
    PUD_DOWN = 21
    PUD_UP = 22
    RISING = 31
    FALLING = 32
    BOTH = 33

    def __init__(self) -> None:
        self.mode: int | None = None
        self.setups: dict[int, PinSetup] = {}
        self.edge_detects: dict[int, EdgeDetect] = {}
        self.levels: dict[int, int] = {}
        self.writes: list[tuple[int, int]] = []
        self.cleaned: list[int] = []
        self.callback_errors: list[BaseException] = []
        self._written = threading.Condition()
        self._events: queue.Queue[tuple[int, threading.Event] | None] = queue.Queue()
        self._callback_thread: threading.Thread | None = None

    # -- the RPi.GPIO API ---------------------------------------------------

    def setmode(self, mode: int) -> None:
        if mode not in (self.BCM, self.BOARD):
            raise ValueError("An invalid mode was passed to setmode()")
        self.mode = mode

    def setup(
        self, channel: int, direction: int, pull_up_down: int = PUD_OFF, initial: int | None = None
    ) -> None:
        if self.mode is None:
            raise RuntimeError("Please set pin numbering mode using GPIO.setmode()")
        self.setups[channel] = PinSetup(direction, pull_up_down, initial)
        if direction == self.OUT:
            self._set_output(channel, self.LOW if initial is None else initial)
        else:
            self.levels[channel] = self.LOW if pull_up_down == self.PUD_DOWN else self.HIGH

    def input(self, channel: int) -> int:
        self._require(channel, None)
        return self.levels[channel]

    def output(self, channel: int, value: int) -> None:
        self._require(channel, self.OUT)
        self._set_output(channel, self.HIGH if value else self.LOW)

    def add_event_detect(
        self,
        channel: int,
        edge: int,
        callback: Callable[[int], object] | None = None,
        bouncetime: int | None = None,
    ) -> None:
        self._require(channel, self.IN)
        if channel in self.edge_detects:
            raise RuntimeError("Conflicting edge detection already enabled for this GPIO channel")
        self.edge_detects[channel] = EdgeDetect(edge, callback, bouncetime)
        if self._callback_thread is None:
            self._callback_thread = threading.Thread(
                target=self._run_callbacks, name="fake-gpio-callbacks", daemon=True
            )
            self._callback_thread.start()

    def cleanup(self, channel: int | list[int] | None = None) -> None:
        if channel is None:
            pins = list(self.setups)
        elif isinstance(channel, int):
            pins = [channel]
        else:
            pins = list(channel)
        for pin in pins:
            self.setups.pop(pin, None)
            self.edge_detects.pop(pin, None)
            self.cleaned.append(pin)
        if not self.edge_detects and self._callback_thread is not None:
            self._events.put(None)
            self._callback_thread.join(CALLBACK_TIMEOUT_SECONDS)
            self._callback_thread = None

    # -- scripting ----------------------------------------------------------

    def drive_low(self, pin: int, timeout_s: float = CALLBACK_TIMEOUT_SECONDS) -> None:
        """Pull input `pin` low (a pressed button); waits until its callback has run."""
        self._drive(pin, self.LOW, timeout_s)

    def drive_high(self, pin: int, timeout_s: float = CALLBACK_TIMEOUT_SECONDS) -> None:
        """Let input `pin` go high (a released button); waits until its callback has run."""
        self._drive(pin, self.HIGH, timeout_s)

    def wait_for_level(self, pin: int, level: int, timeout_s: float = 2.0) -> bool:
        """Wait until output `pin` has been written `level`; False on timeout."""
        with self._written:
            return self._written.wait_for(lambda: self.levels.get(pin) == level, timeout_s)

    def wait_for_writes(self, count: int, timeout_s: float = 2.0) -> bool:
        """Wait until at least `count` outputs have been written; False on timeout."""
        with self._written:
            return self._written.wait_for(lambda: len(self.writes) >= count, timeout_s)

    def writes_to(self, pin: int) -> list[int]:
        with self._written:
            return [level for written, level in self.writes if written == pin]

    # -- inside -------------------------------------------------------------

    def _require(self, channel: int, direction: int | None) -> None:
        setup = self.setups.get(channel)
        if setup is None:
            raise RuntimeError("The GPIO channel has not been set up")
        if direction is not None and setup.direction != direction:
            kind = "an OUTPUT" if direction == self.OUT else "an INPUT"
            raise RuntimeError("The GPIO channel has not been set up as " + kind)

    def _set_output(self, channel: int, level: int) -> None:
        with self._written:
            self.levels[channel] = level
            self.writes.append((channel, level))
            self._written.notify_all()

    def _drive(self, pin: int, level: int, timeout_s: float) -> None:
        self._require(pin, self.IN)
        if self.levels[pin] == level:
            return  # no change, no edge
        self.levels[pin] = level
        detect = self.edge_detects.get(pin)
        wanted = self.FALLING if level == self.LOW else self.RISING
        if detect is None or detect.callback is None or detect.edge not in (wanted, self.BOTH):
            return
        done = threading.Event()
        self._events.put((pin, done))
        if not done.wait(timeout_s):
            raise TimeoutError(f"the callback of GPIO{pin} did not run within {timeout_s}s")

    def _run_callbacks(self) -> None:
        # One thread for every pin's callbacks, in order, like RPi.GPIO's.
        while (item := self._events.get()) is not None:
            pin, done = item
            detect = self.edge_detects.get(pin)
            try:
                if detect is not None and detect.callback is not None:
                    detect.callback(pin)
            except Exception as exc:
                self.callback_errors.append(exc)
            finally:
                done.set()
