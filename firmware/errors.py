"""The firmware's errors: the core's (re-exported) and the drivers'.

Dependencies point inward: the root exception lives in firmware/core/errors.py
so the core needs nothing outside itself; drivers and runtimes import from here.
"""

from firmware.core.errors import ConfigError, FirmwareError, StateError

__all__ = ["ConfigError", "FirmwareError", "GpsError", "StateError"]


class GpsError(FirmwareError):
    """A GPS source cannot be read (gpsd unreachable, port gone); names host:port or the port.

    Not also an OSError (the core's errors have one base, for MicroPython);
    drivers chain the OSError as its cause.
    """
