"""The unit's buttons, LEDs and buzzer on a Raspberry Pi, with RPi.GPIO.

On a Pi 5 the rpi-lgpio drop-in provides the same `RPi.GPIO` module. It is
imported only in `RpiGpioBoard.start()`, so this module imports on a laptop;
tests pass `gpio=FakeGpioModule()` from gpio_fake.py instead. BCM numbering;
docs/wiring.md shows the default pins (gpio_board.DEFAULT_PINS).

Threads: button edges arrive on the GPIO library's callback thread, so
`on_edge` must hand them over thread-safely (e.g. put them on the runtime's
queue). LEDs and the buzzer are written by the one PatternThread; `set_led`
and `buzz` may be called from any thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from firmware.drivers.gpio_board import (
    BUZZER,
    EdgeHandler,
    PatternPlayer,
    PatternThread,
    buzzer_pattern,
    check_pins,
)

log = logging.getLogger(__name__)


class GpioModule(Protocol):
    """The part of RPi.GPIO (or rpi-lgpio) that this driver uses."""

    BCM: int
    IN: int
    OUT: int
    PUD_UP: int
    BOTH: int
    HIGH: int
    LOW: int

    def setmode(self, mode: int) -> None: ...

    def setup(
        self, channel: int, direction: int, pull_up_down: int = ..., initial: int = ...
    ) -> None: ...

    def input(self, channel: int) -> int: ...

    def output(self, channel: int, value: int) -> None: ...

    def add_event_detect(
        self, channel: int, edge: int, callback: Callable[[int], object] = ...
    ) -> None: ...

    def cleanup(self, channel: list[int] = ...) -> None: ...


class RpiGpioBoard:
    """Buttons (active low, pulled up) in; LEDs and an active buzzer (through a transistor) out."""

    def __init__(
        self,
        buttons: Mapping[str, int],
        leds: Mapping[str, int],
        buzzer_pin: int | None,
        on_edge: EdgeHandler,
        gpio: GpioModule | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        check_pins(buttons, leds, buzzer_pin)
        self.buttons = dict(buttons)
        self.leds = dict(leds)
        self.buzzer_pin = buzzer_pin
        self._on_edge = on_edge
        self._gpio = gpio
        self._names = {pin: name for name, pin in self.buttons.items()}
        self._outputs = dict(self.leds)
        if buzzer_pin is not None:
            self._outputs[BUZZER] = buzzer_pin
        self._patterns = PatternThread(PatternPlayer(self.leds), self._write, clock)
        self._started = False
        self._claimed: list[int] = []  # pins set up so far, for close() after a failed start

    @property
    def running(self) -> bool:
        """The pattern thread is alive (for the runtime's watchdog)."""
        return self._patterns.running

    def start(self) -> None:
        if self._started:
            return
        if self._gpio is None:
            import RPi.GPIO  # only here, so that this module imports on a laptop

            self._gpio = RPi.GPIO
        gpio = self._gpio
        self._started = True
        gpio.setmode(gpio.BCM)
        for pin in self._outputs.values():
            gpio.setup(pin, gpio.OUT, initial=gpio.LOW)
            self._claimed.append(pin)
        for pin in self.buttons.values():
            # Active low: the button closes the pin to GND, the pull-up holds it
            # high otherwise, so a cut wire reads "not pressed".
            gpio.setup(pin, gpio.IN, pull_up_down=gpio.PUD_UP)
            self._claimed.append(pin)
            # Both edges and NO bouncetime: the core debounces (firmware.core.buttons)
            # from the tick of every edge. RPi.GPIO's bouncetime would also swallow
            # a release that comes within it, leaving the core believing the
            # button is still held.
            gpio.add_event_detect(pin, gpio.BOTH, callback=self._edge)
        self._patterns.start()

    def set_led(self, name: str, pattern: str) -> None:
        self._patterns.set_led(name, pattern)

    def buzz(self, pattern: str) -> None:
        if self.buzzer_pin is None:
            buzzer_pattern(pattern)  # still refuse an unknown name
            return
        self._patterns.buzz(pattern)

    def close(self) -> None:
        """Stop the patterns, turn every output off and release this board's pins.

        Also after a start() that failed half-way; a closed board is not restarted.
        """
        self._patterns.stop()
        gpio, claimed = self._gpio, self._claimed
        self._claimed = []
        if gpio is None or not claimed:
            return
        try:
            for pin in self._outputs.values():
                if pin in claimed:
                    gpio.output(pin, gpio.LOW)
        finally:
            # Only our own pins: another program may use the rest of the header.
            gpio.cleanup(claimed)

    def _write(self, name: str, level: bool) -> None:
        gpio = self._gpio
        if gpio is not None and name in self._outputs:
            gpio.output(self._outputs[name], gpio.HIGH if level else gpio.LOW)

    def _edge(self, channel: int) -> None:
        # The level is read now, not inferred from the edge: with bouncing
        # contacts several callbacks queue up, and the last read is the truth.
        gpio = self._gpio
        name = self._names.get(channel)
        if gpio is None or name is None:
            return
        try:
            self._on_edge(name, gpio.input(channel))
        except Exception:
            # The callback thread serves every button: one failure must not end it.
            log.exception("on_edge failed for button %s (GPIO%d)", name, channel)
