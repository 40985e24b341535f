"""NMEA 0183 sentences for a fix, as a GPS receiver sends them once a second.

RMC (the recommended minimum: time, date, position, speed, course), VTG (course
and speed), GGA (fix, satellites, HDOP, altitude), GSA (mode, satellites used,
DOPs) and GSV (satellites in view, four to a sentence), in the order a u-blox
receiver sends them, each with its checksum and CR LF. A fix without a position
gives the sentences a receiver sends while searching: empty fields, GGA quality
0, RMC status V, GSA mode 1.
Verified in the tests by pynmea2 and by gpsd itself (through gpsfake).
"""

from __future__ import annotations

import datetime
import math
from typing import Any

from firmware.core.fix import MODE_2D, MODE_3D

KNOTS_PER_MPS = 1.0 / 0.514444
GEOID_SEPARATION_M = 46.9  # about right for Kénitra


def checksum(body: str) -> str:
    value = 0
    for char in body:
        value ^= ord(char)
    return f"{value:02X}"


def sentence(body: str) -> str:
    return f"${body}*{checksum(body)}\r\n"


def _angle(value: float, degree_digits: int, hemispheres: str) -> tuple[str, str]:
    hemisphere = hemispheres[0] if value >= 0 else hemispheres[1]
    value = abs(value)
    degrees = int(value)
    minutes = (value - degrees) * 60
    if round(minutes, 5) >= 60:  # 59.999999 rounds up into the next degree
        degrees, minutes = degrees + 1, 0.0
    return f"{degrees:0{degree_digits}d}{minutes:08.5f}", hemisphere


def _satellites(count: int) -> list[tuple[int, int, int, int]]:
    """(PRN, elevation, azimuth, SNR) of `count` satellites, spread over the sky."""
    return [
        (prn, 15 + (prn * 37) % 70, (prn * 67) % 360, 30 + (prn * 11) % 18)
        for prn in range(2, 2 + 3 * count, 3)
    ]


def sentences(fix: Any, talker: str = "GP") -> list[str]:
    """The sentences of one epoch for a firmware.core.fix.Fix."""
    when = datetime.datetime.fromtimestamp((fix.time_ms or 0) / 1000, datetime.UTC)
    hms = when.strftime("%H%M%S.") + f"{when.microsecond // 10000:02d}"
    dmy = when.strftime("%d%m%y")
    has_fix = fix.mode in (MODE_2D, MODE_3D) and fix.lat is not None and fix.lon is not None
    sats = fix.sats or 0
    in_view = _satellites(max(sats, 4) if has_fix else sats)
    used = [prn for prn, *_ in in_view[:sats]] if has_fix else []
    hdop = f"{fix.hdop:.2f}" if fix.hdop is not None and has_fix else ""
    pdop = f"{fix.hdop * 1.6:.2f}" if fix.hdop is not None and has_fix else ""
    vdop = f"{fix.hdop * 1.3:.2f}" if fix.hdop is not None and has_fix else ""
    if has_fix:
        lat, ns = _angle(fix.lat, 2, "NS")
        lon, ew = _angle(fix.lon, 3, "EW")
    else:
        lat = ns = lon = ew = ""
    alt = f"{fix.alt_m:.1f}" if fix.alt_m is not None and fix.mode == MODE_3D else ""
    geoid = f"{GEOID_SEPARATION_M:.1f}" if alt else ""
    speed = fix.speed_mps if fix.speed_mps is not None else 0.0
    knots = f"{speed * KNOTS_PER_MPS:.3f}" if has_fix else ""
    kmh = f"{speed * 3.6:.3f}" if has_fix else ""
    course = f"{fix.heading_deg:.1f}" if fix.heading_deg is not None and has_fix else ""

    gga_gsa = [
        sentence(
            f"{talker}GGA,{hms},{lat},{ns},{lon},{ew},{1 if has_fix else 0},"
            f"{len(used):02d},{hdop},{alt},{'M' if alt else ''},{geoid},{'M' if geoid else ''},,"
        ),
        sentence(
            f"{talker}GSA,A,{fix.mode if has_fix else 1},"
            + ",".join([f"{prn:02d}" for prn in used[:12]] + [""] * (12 - len(used[:12])))
            + f",{pdop},{hdop},{vdop}"
        ),
    ]
    gsv = []
    pages = max(1, math.ceil(len(in_view) / 4))
    for page in range(pages):
        chunk = in_view[page * 4 : page * 4 + 4]
        fields = "".join(f",{prn:02d},{el:02d},{az:03d},{snr:02d}" for prn, el, az, snr in chunk)
        gsv.append(sentence(f"{talker}GSV,{pages},{page + 1},{len(in_view):02d}{fields}"))
    rmc = sentence(
        f"{talker}RMC,{hms},{'A' if has_fix else 'V'},{lat},{ns},{lon},{ew},{knots},"
        f"{course},{dmy},,,{'A' if has_fix else 'N'}"
    )
    vtg = sentence(f"{talker}VTG,{course},T,,M,{knots},N,{kmh},K,{'A' if has_fix else 'N'}")
    # A u-blox receiver's order: gpsd learns the epoch's first and last sentence from it.
    return [rmc, vtg, *gga_gsa, *gsv]
