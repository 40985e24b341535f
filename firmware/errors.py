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
