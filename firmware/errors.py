"""The firmware's root exception; every error a unit raises on purpose is one.

This module is imported by firmware/core/, which runs on MicroPython, and
MicroPython cannot give a class two exception bases: so unlike the CPython
packages, these errors derive from FirmwareError alone (no second builtin
base such as ValueError or OSError).
"""


class FirmwareError(Exception):
    """Something on the unit is wrong: its configuration, its state files or a driver."""


class ConfigError(FirmwareError):
    """A unit configuration value is missing or wrong; the message names the key."""


class StateError(FirmwareError):
    """The unit's durable state (e.g. its sequence ceiling) is unreadable or cannot be written."""


class GpsError(FirmwareError):
    """A GPS source cannot be read (gpsd unreachable, port gone); names host:port or the port.

    Not also an OSError: see the module docstring. Drivers chain the OSError as its cause.
    """
