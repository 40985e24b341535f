"""The firmware's root exception and the errors the core raises.

The core runs on MicroPython, which cannot give a class two exception bases,
so these derive from FirmwareError alone (no second builtin base such as
ValueError or OSError). firmware/errors.py re-exports them for the drivers
and runtimes, and adds theirs.
"""


class FirmwareError(Exception):
    """Something on the unit is wrong: its configuration, its state files or a driver."""


class ConfigError(FirmwareError):
    """A unit configuration value is missing or wrong; the message names the key."""


class StateError(FirmwareError):
    """The unit's durable state (e.g. its sequence ceiling) is unreadable or cannot be written."""
