"""Buttons: raw edges in, debounced presses, releases and holds out.

The same logic on the Pi (RPi.GPIO edge callbacks) and the Pico (pin IRQs):
drivers report every raw edge with its tick; a level counts only once it has
been stable for `debounce_ms` (default 30 ms), so contact bounce and the
spikes a motorcycle's wiring picks up never register as a press. A button
held down fires a `hold` event once for each configured duration (for
example 2000 ms raises an SOS). Plain Python; runs on MicroPython.
"""

PRESS = "press"
RELEASE = "release"
HOLD = "hold"


class ButtonEvent:
    """`kind` PRESS, RELEASE or HOLD of button `pin`, at `tick_ms`.

    `since_ms` is the tick the press began; `held_ms` how long it was held
    (for RELEASE and HOLD).
    """

    def __init__(self, kind, pin, tick_ms, since_ms, held_ms=0):
        self.kind = kind
        self.pin = pin
        self.tick_ms = tick_ms
        self.since_ms = since_ms
        self.held_ms = held_ms

    def __repr__(self):
        return "ButtonEvent(%s %s at %d, held %d)" % (
            self.kind,
            self.pin,
            self.tick_ms,
            self.held_ms,
        )


class _Button:
    def __init__(self, holds_ms):
        self.raw_pressed = False
        self.raw_tick = 0
        self.pressed = False
        self.since = 0
        self.holds_ms = sorted(holds_ms)
        self.holds_fired = 0


class Buttons:
    """Debounce and long-press detection for a set of named buttons.

    `holds_ms` maps a pin to the hold durations (ms) that fire HOLD events.
    """

    def __init__(self, pins, debounce_ms=30, holds_ms=None):
        holds_ms = holds_ms or {}
        self.debounce_ms = debounce_ms
        self._buttons = {pin: _Button(holds_ms.get(pin, ())) for pin in pins}

    def pins(self):
        return list(self._buttons)

    def on_edge(self, pin, pressed, tick_ms):
        """A raw edge; returns the events that became certain by `tick_ms`."""
        button = self._buttons[pin]
        events = self.on_tick(tick_ms)
        if pressed != button.raw_pressed:
            button.raw_pressed = pressed
            button.raw_tick = tick_ms
        return events

    def on_tick(self, tick_ms):
        events = []
        for pin, button in self._buttons.items():
            self._settle(pin, button, tick_ms, events)
            self._check_holds(pin, button, tick_ms, events)
        return events

    def next_deadline_ms(self):
        """The tick at which on_tick may have something to say, or None."""
        deadlines = []
        for button in self._buttons.values():
            if button.raw_pressed != button.pressed:
                deadlines.append(button.raw_tick + self.debounce_ms)
            elif button.pressed and button.holds_fired < len(button.holds_ms):
                deadlines.append(button.since + button.holds_ms[button.holds_fired])
        return min(deadlines) if deadlines else None

    def is_pressed(self, pin):
        return self._buttons[pin].pressed

    def _settle(self, pin, button, tick_ms, events):
        if button.raw_pressed == button.pressed or tick_ms - button.raw_tick < self.debounce_ms:
            return
        if button.raw_pressed:
            button.pressed = True
            button.since = button.raw_tick
            button.holds_fired = 0
            events.append(ButtonEvent(PRESS, pin, button.raw_tick, button.since))
            return
        # A hold that ended before anyone called on_tick still counts.
        self._check_holds(pin, button, button.raw_tick, events)
        button.pressed = False
        held = button.raw_tick - button.since
        events.append(ButtonEvent(RELEASE, pin, button.raw_tick, button.since, held))

    def _check_holds(self, pin, button, tick_ms, events):
        while button.pressed and button.holds_fired < len(button.holds_ms):
            hold_ms = button.holds_ms[button.holds_fired]
            if tick_ms - button.since < hold_ms:
                return
            button.holds_fired += 1
            events.append(ButtonEvent(HOLD, pin, button.since + hold_ms, button.since, hold_ms))
