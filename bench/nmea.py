"""NMEA 0183 sentences for a `Fix`: the GGA and RMC a 1 Hz receiver sends each epoch.

Checksums are the XOR of every character between `$` and `*` [NMEA 0183, 5.3]. Coordinates
are written as (d)ddmm.mmmmm (a hundredth of a metre), speed in knots, course in degrees
true, time hhmmss.ss and date ddmmyy in UTC. Imports firmware.core.fix only.
"""

from __future__ import annotations

import time
from typing import Any

KNOTS_PER_MPS = 3600 / 1852


def checksum(body: str) -> str:
    value = 0
    for char in body:
        value ^= ord(char)
    return f"{value:02X}"


def sentence(body: str) -> str:
    return f"${body}*{checksum(body)}\r\n"


def _coordinate(degrees: float, width: int, signs: str) -> tuple[str, str]:
    hemisphere = signs[0] if degrees >= 0 else signs[1]
    degrees = abs(degrees)
    whole = int(degrees)
    minutes = (degrees - whole) * 60
    if round(minutes, 5) >= 60:  # 59.999999 would print as 60.00000
        whole, minutes = whole + 1, 0.0
    return f"{whole:0{width}d}{minutes:08.5f}", hemisphere


def epoch(fix: Any) -> str:
    """GGA then RMC for a `Fix` with a position and a time."""
    if fix.time_ms is None or fix.lat is None or fix.lon is None:
        raise ValueError(f"a fix needs a time and a position to be written as NMEA: {fix!r}")
    seconds, millis = divmod(fix.time_ms, 1000)
    utc = time.gmtime(seconds)
    hhmmss = time.strftime("%H%M%S", utc) + f".{millis // 10:02d}"
    ddmmyy = time.strftime("%d%m%y", utc)
    lat, ns = _coordinate(fix.lat, 2, "NS")
    lon, ew = _coordinate(fix.lon, 3, "EW")
    hdop = "" if fix.hdop is None else f"{fix.hdop:.1f}"
    sats = "" if fix.sats is None else f"{fix.sats:02d}"
    alt = "" if fix.alt_m is None else f"{fix.alt_m:.1f}"
    knots = "" if fix.speed_mps is None else f"{fix.speed_mps * KNOTS_PER_MPS:.3f}"
    course = "" if fix.heading_deg is None else f"{fix.heading_deg:.2f}"
    gga = f"GPGGA,{hhmmss},{lat},{ns},{lon},{ew},1,{sats},{hdop},{alt},M,47.0,M,,"
    rmc = f"GPRMC,{hhmmss},A,{lat},{ns},{lon},{ew},{knots},{course},{ddmmyy},,,A"
    return sentence(gga) + sentence(rmc)
