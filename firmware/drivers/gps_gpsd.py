"""The unit's GPS through gpsd, with the gpsd-py3 library (module `gpsd`).

`GpsdSource(host, port)`: `connect()`, then `read()` as often as the runtime likes (each
call is one `?POLL;` round trip to gpsd), then `close()`. Imports gpsd-py3, the standard
library, firmware.core.fix and firmware.errors.

What the unit takes from gpsd's POLL answer (gpsd's JSON protocol, TPV and SKY reports):
- TPV mode 2/3 -> MODE_2D/MODE_3D; mode 0 (gpsd has no data, the device went away) and
  1 -> MODE_NO_FIX, with no position, altitude, speed or course.
- TPV time (ISO 8601, UTC) -> time_ms, passed through as gpsd says it (gpsd corrects GPS
  week rollovers against its own build date; the core decides when to trust it).
- TPV lat, lon, altMSL (else alt), speed (m/s), track, and eph -> acc_m (gpsd's estimated
  horizontal error, 95 %).
- SKY hdop -> hdop; SKY uSat -> sats, only when SKY lists satellites (gpsd says uSat 0
  when the receiver sends no GSA/GSV, which is not "no satellites").

Limits of gpsd-py3 0.3.0, and what this module does about them:
- It keeps its connection in module globals (`gpsd.gpsd_socket`, `gpsd.gpsd_stream`): one
  connection per process. A second `GpsdSource` refuses to connect while one is connected.
- It polls: `?POLL;` returns only gpsd's latest TPV per device, so reports between two
  reads are never seen, and gpsd sends several TPVs per epoch as sentences arrive (the
  first often before it knows the time). `read()` returns a `Fix` when the latest TPV
  differs from the one it returned last, else None; a partial TPV gives a Fix with
  time_ms None. With several devices, the last one's TPV is used.
- Its `GpsResponse` turns every missing value into 0 (altitude, speed, track, error
  estimates), drops eph, hdop and the time of a no-fix report, and raises on a POLL with
  no SKY. So this module uses the library's `connect()` (greeting and `?WATCH`) and reads
  the raw POLL answer from the library's stream itself, rather than `get_current()`.
- `connect()` has no timeout, IPv4 only (AF_INET), and logs through the deprecated
  `logger.warn` when gpsd has no device yet. `connect()` here first checks within
  `timeout_s` that a gpsd answers at host:port, then gives the library's socket the same
  timeout for every poll; gpsd blocks for about a second while it probes a new device.
- It raises bare `Exception` on a greeting or answer it does not expect; every failure
  becomes `GpsError` naming host:port, after which the source must be connected again.
"""

from __future__ import annotations

import json
import logging
import socket
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import gpsd

from firmware.core.fix import MODE_2D, MODE_3D, MODE_NO_FIX, Fix
from firmware.errors import GpsError

logger = logging.getLogger(__name__)

GPSD_PORT = 2947
TIMEOUT_SECONDS = 5.0
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


class GpsdSource:
    """Reads fixes from a gpsd; one connected per process (gpsd-py3 holds it globally)."""

    _connected: ClassVar[GpsdSource | None] = None

    def __init__(
        self, host: str = "127.0.0.1", port: int = GPSD_PORT, *, timeout_s: float = TIMEOUT_SECONDS
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.bad_reports = 0  # POLL answers whose TPV did not map to a Fix: logged and skipped
        self._last_tpv: dict[str, Any] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> None:
        """Connect and start watching; raises GpsError when no gpsd answers at host:port."""
        holder = GpsdSource._connected
        if holder is not None and holder is not self:
            raise GpsError(
                f"gpsd {self.address}: gpsd-py3 keeps one connection per process"
                f" and gpsd {holder.address} holds it"
            )
        if holder is self:
            self._drop_connection()
        self._check_gpsd_answers()
        try:
            with warnings.catch_warnings():
                # gpsd-py3 calls the deprecated logger.warn() when gpsd has no device yet.
                warnings.simplefilter("ignore", DeprecationWarning)
                gpsd.connect(host=self.host, port=self.port)
            gpsd.gpsd_socket.settimeout(self.timeout_s)
        except Exception as exc:  # gpsd-py3 raises bare Exception on an unexpected greeting
            self._drop_connection()
            raise GpsError(f"gpsd {self.address}: cannot start watching: {exc}") from exc
        GpsdSource._connected = self
        self._last_tpv = None

    def read(self) -> Fix | None:
        """gpsd's latest fix if it changed since the last read, else None."""
        packet = self._poll()
        reports = packet.get("tpv") or []
        if not packet.get("active") or not reports:
            return None  # no device is sending yet
        tpv = reports[-1]
        if tpv == self._last_tpv:
            return None
        self._last_tpv = tpv
        skies = packet.get("sky") or [{}]
        try:
            if not isinstance(tpv, dict) or not isinstance(skies[-1], dict):
                raise TypeError("TPV or SKY is not an object")
            return fix_from_gpsd(tpv, skies[-1])
        except (ValueError, TypeError) as exc:
            self.bad_reports += 1
            logger.warning("gpsd %s: TPV skipped (%s): %.200s", self.address, exc, tpv)
            return None

    def close(self) -> None:
        """Close the connection (it is the library's one per process). Safe to call twice."""
        if GpsdSource._connected is self:
            self._drop_connection()

    def _check_gpsd_answers(self) -> None:
        """Fail within timeout_s when nothing, or something other than gpsd, is there."""
        try:
            with socket.create_connection((self.host, self.port), self.timeout_s) as probe:
                probe.settimeout(self.timeout_s)
                greeting = probe.makefile("rb").readline().decode("utf-8", "replace")
        except OSError as exc:
            raise GpsError(f"gpsd {self.address} is not reachable: {exc}") from exc
        try:
            is_gpsd = json.loads(greeting).get("class") == "VERSION"
        except (ValueError, AttributeError):
            is_gpsd = False
        if not is_gpsd:
            raise GpsError(f"gpsd {self.address}: no gpsd greeting, got {greeting[:80]!r}")

    def _poll(self) -> dict[str, Any]:
        stream = gpsd.gpsd_stream
        if GpsdSource._connected is not self or stream is None:
            raise GpsError(f"gpsd {self.address}: not connected")
        try:
            stream.write("?POLL;\n")
            stream.flush()
            line = stream.readline()
        except OSError as exc:  # includes the socket timeout
            self._drop_connection()
            raise GpsError(f"gpsd {self.address}: poll failed: {exc}") from exc
        if not line:
            self._drop_connection()
            raise GpsError(f"gpsd {self.address} closed the connection")
        try:
            packet = json.loads(line)
        except ValueError as exc:
            self._drop_connection()
            raise GpsError(f"gpsd {self.address}: bad JSON {line[:80]!r}") from exc
        if not isinstance(packet, dict) or packet.get("class") != "POLL":
            self._drop_connection()
            raise GpsError(f"gpsd {self.address}: expected a POLL answer, got {line[:80]!r}")
        return packet

    def _drop_connection(self) -> None:
        for handle in (gpsd.gpsd_stream, gpsd.gpsd_socket):
            if handle is not None:
                try:
                    handle.close()
                except OSError as exc:  # the socket is going away anyway
                    logger.debug("gpsd %s: close: %s", self.address, exc)
        gpsd.gpsd_stream = None
        gpsd.gpsd_socket = None
        if GpsdSource._connected is self:
            GpsdSource._connected = None


def fix_from_gpsd(tpv: dict[str, Any], sky: dict[str, Any]) -> Fix:
    """One gpsd TPV report (and the SKY beside it in the POLL answer) as a Fix."""
    mode = tpv.get("mode")
    mode = mode if mode in (MODE_2D, MODE_3D) else MODE_NO_FIX
    time_ms = _iso_time_ms(tpv.get("time"))
    hdop = _number(sky.get("hdop"))
    sats = _sats_used(sky)
    if mode == MODE_NO_FIX:
        return Fix(time_ms=time_ms, mode=MODE_NO_FIX, hdop=hdop, sats=sats)
    alt_m = tpv.get("altMSL", tpv.get("alt"))
    return Fix(
        time_ms=time_ms,
        mode=mode,
        lat=_number(tpv.get("lat")),
        lon=_number(tpv.get("lon")),
        speed_mps=_number(tpv.get("speed")),
        heading_deg=_number(tpv.get("track")),
        alt_m=_number(alt_m),
        acc_m=_number(tpv.get("eph")),
        hdop=hdop,
        sats=sats,
    )


def _sats_used(sky: dict[str, Any]) -> int | None:
    """SKY uSat (gpsd 3.20+, else counted), only when SKY lists satellites at all."""
    satellites = sky.get("satellites")
    if not satellites:
        return None
    if "uSat" in sky:
        return _int(sky["uSat"])
    return sum(1 for satellite in satellites if satellite.get("used") is True)


def _iso_time_ms(text: object) -> int | None:
    """gpsd's "2024-05-01T12:00:00.000Z" to ms since the Unix epoch."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"time is not a string: {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return (moment - _UNIX_EPOCH) // _MILLISECOND


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    return value
