"""Choosing a GPS source from its URL, as the unit's configuration and the CLI give it.

    gpsd://HOST[:PORT]                 gpsd (gps_gpsd.py); PORT defaults to 2947
    serial:///dev/ttyAMA0?baud=9600    an NMEA receiver on a serial port (gps_serial.py);
                                       baud defaults to 9600

`gps_source_from_url` only parses (no I/O); `open_gps` also connects or opens the source.
Both raise ConfigError naming the URL and what is wrong with it. The driver modules are
imported only when a URL asks for them, so this module imports without gpsd-py3 or pyserial.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol
from urllib.parse import SplitResult, parse_qs, urlsplit

from firmware.core.fix import Fix
from firmware.errors import ConfigError

if TYPE_CHECKING:
    from firmware.drivers.gps_gpsd import GpsdSource
    from firmware.drivers.gps_serial import SerialNmeaSource

GPSD_DEFAULT_PORT = 2947
SERIAL_DEFAULT_BAUD = 9600
SERIAL_BAUDS = (4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
URL_FORMS = "gpsd://HOST[:PORT] or serial:///dev/DEVICE[?baud=N]"


class GpsSource(Protocol):
    """What the runtime needs of an opened GPS source (the real ones and FakeGps)."""

    def read(self) -> Fix | None: ...

    def close(self) -> None: ...


# A built source and the method that starts it (GpsdSource.connect, SerialNmeaSource.open).
_Built = tuple["GpsdSource | SerialNmeaSource", Callable[[], None]]


def gps_source_from_url(url: str) -> GpsdSource | SerialNmeaSource:
    """The source a URL names, not yet connected or opened."""
    source, _start = _build(url)
    return source


def open_gps(url: str) -> GpsdSource | SerialNmeaSource:
    """The source a URL names, connected (gpsd) or opened (serial); GpsError if it cannot be."""
    source, start = _build(url)
    start()
    return source


def _build(url: str) -> _Built:
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise _bad(url, str(exc)) from exc
    builder = _BUILDERS.get(parts.scheme.lower())
    if builder is None:
        raise _bad(url, f"unknown scheme {parts.scheme!r}: use {URL_FORMS}")
    return builder(url, parts)


def _gpsd(url: str, parts: SplitResult) -> _Built:
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _bad(url, "a gpsd URL has a host and a port only")
    if parts.username is not None or parts.password is not None:
        raise _bad(url, "a gpsd URL takes no user or password")
    host = parts.hostname
    if not host:
        raise _bad(url, "no host, e.g. gpsd://127.0.0.1:2947")
    if ":" in host:
        raise _bad(url, "IPv6 addresses are not supported (gpsd-py3 speaks IPv4 only)")
    try:
        port = parts.port
    except ValueError as exc:
        raise _bad(url, f"bad port: {exc}") from exc
    if port == 0:
        raise _bad(url, "port 0")

    from firmware.drivers.gps_gpsd import GpsdSource

    source = GpsdSource(host, port if port is not None else GPSD_DEFAULT_PORT)
    return source, source.connect


def _serial(url: str, parts: SplitResult) -> _Built:
    if parts.netloc:
        raise _bad(
            url,
            f"{parts.netloc!r} is read as a host: write the device path after three slashes,"
            " e.g. serial:///dev/ttyAMA0",
        )
    if not parts.path.startswith("/") or parts.path.endswith("/") or parts.fragment:
        raise _bad(url, "the device must be an absolute path, e.g. serial:///dev/ttyAMA0")
    baud = _baud(url, parts.query)

    from firmware.drivers.gps_serial import SerialNmeaSource

    source = SerialNmeaSource(parts.path, baud)
    return source, source.open


def _baud(url: str, query: str) -> int:
    if not query:
        return SERIAL_DEFAULT_BAUD
    try:
        options = parse_qs(query, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise _bad(url, f"bad query {query!r}") from exc
    unknown = sorted(set(options) - {"baud"})
    if unknown:
        raise _bad(url, f"unknown option {', '.join(unknown)}: only baud is known")
    values = options["baud"]
    if len(values) != 1:
        raise _bad(url, "baud given more than once")
    text = values[0]
    if not text.isdigit() or int(text) not in SERIAL_BAUDS:
        rates = ", ".join(str(rate) for rate in SERIAL_BAUDS)
        raise _bad(url, f"baud {text!r} is not one of {rates}")
    return int(text)


def _bad(url: str, why: str) -> ConfigError:
    return ConfigError(f"GPS URL {url!r}: {why}")


_BUILDERS: dict[str, Callable[[str, SplitResult], _Built]] = {
    "gpsd": _gpsd,
    "serial": _serial,
}
