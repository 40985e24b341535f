"""The unit's settings, with defaults and checks that name the bad key.

Runtimes read them from TOML (CPython) or a dict (MicroPython) and pass
keyword arguments; the core never reads files for its configuration.
"""

from firmware.core.errors import ConfigError
from protocol import status

SOS = "sos"

# name -> (default, lowest, highest); None bounds are unchecked.
NUMBERS = {
    "debounce_ms": (30, 1, 1000),
    "sos_hold_ms": (2000, 200, 10000),
    "sos_cancel_hold_ms": (3000, 500, 20000),
    "sos_repeat_s": (5.0, 1, 600),
    "status_retry_s": (10.0, 1, 600),
    "threshold_m": (25.0, 1, 10000),
    "heartbeat_moving_s": (60.0, 5, 3600),
    "heartbeat_parked_s": (300.0, 5, 86400),
    "min_interval_s": (1.0, 0, 3600),
    "max_hdop": (5.0, 0.5, 99.99),
    "health_interval_s": (60.0, 5, 3600),
    # Every n-th health carries every field; the others only what changed (core/health.py).
    "health_full_every": (10, 1, 1000),
    "gps_time_trust_fixes": (3, 1, 100),
    "max_inflight": (10, 1, 100),
}
# A motorcycle's four status buttons and the guarded SOS button; pin names are
# logical, the GPIO driver maps them to header pins.
DEFAULT_BUTTONS = {"b1": "available", "b2": "en_route", "b3": "on_scene", "b4": "busy", "sos": SOS}


class UnitConfig:
    """Every setting of the core. Unknown or out-of-range keys raise ConfigError."""

    def __init__(self, **settings):
        self.buttons = settings.pop("buttons", DEFAULT_BUTTONS)
        self.sos_hold_button = settings.pop("sos_hold_button", None)
        self.active_low = settings.pop("active_low", True)
        # Nothing in the command room uses a position's altitude (the track, the API and the
        # console are 2D), so by default `pos` leaves it out: 8 bytes a report.
        self.report_altitude = settings.pop("report_altitude", False)
        if type(self.report_altitude) is not bool:
            raise ConfigError(
                "report_altitude: must be true or false, got %r" % (self.report_altitude,)
            )
        for name, (default, lo, hi) in NUMBERS.items():
            setattr(self, name, _number(name, settings.pop(name, default), lo, hi))
        if settings:
            raise ConfigError("unknown setting %s" % ", ".join(sorted(settings)))
        self._check_buttons()

    def _check_buttons(self):
        if type(self.buttons) is not dict or not self.buttons:
            raise ConfigError("buttons: must map button names to a status name or 'sos'")
        for pin, action in self.buttons.items():
            if action != SOS and action not in status.names():
                known = ", ".join(status.names())
                raise ConfigError(
                    "buttons.%s: unknown action %r; use 'sos' or one of %s" % (pin, action, known)
                )
        hold = self.sos_hold_button
        if hold is not None and (hold not in self.buttons or self.buttons[hold] == SOS):
            raise ConfigError("sos_hold_button: %r must be one of the status buttons" % (hold,))
        if SOS not in self.buttons.values() and hold is None:
            raise ConfigError(
                "buttons: no way to raise an SOS; add a 'sos' button or set sos_hold_button"
            )
        if self.sos_cancel_hold_ms <= self.sos_hold_ms:
            raise ConfigError("sos_cancel_hold_ms: must be longer than sos_hold_ms")

    def status_of(self, pin):
        """The status code a button sets, or None for the SOS button."""
        action = self.buttons[pin]
        return None if action == SOS else status.code_of(action)

    def pin_for(self, action):
        for pin, pin_action in self.buttons.items():
            if pin_action == action:
                return pin
        return None


def _number(name, value, lo, hi):
    if type(value) is bool or (type(value) is not int and type(value) is not float):
        raise ConfigError("%s: must be a number, got %r" % (name, value))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError("%s: must be from %s to %s, got %r" % (name, lo, hi, value))
    return value
