"""The firmware's root exception; every error a unit raises on purpose is one."""


class FirmwareError(Exception):
    """Something on the unit is wrong: its configuration, its state files or a driver."""


class ConfigError(FirmwareError, ValueError):
    """A unit configuration value is missing or wrong; the message names the key."""
