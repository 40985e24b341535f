"""The real receiver recordings in tests/data/nmea/ and gpsd's expected reports for them.

They are gpsd's regression captures (BSD-2-Clause, see tests/data/nmea/README.md), kept in
the repository so that a clone anywhere runs the tests; a missing one fails the test,
naming the path.

Times: the `.chk` files come from several gpsd versions, and gpsd moves a date it finds
older than its own build forward by 1024 GPS weeks (a receiver's week-rollover bug, as it
sees it). So the same epoch can carry a date 1024 weeks apart in the `.chk`, in what
today's gpsd says and in the receiver's own NMEA; times are compared modulo 1024 weeks
(`same_time`), which keeps the time of day and the weekday exact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firmware.core.fix import MODE_2D, MODE_3D, MODE_NO_FIX, Fix

ROOT = Path(__file__).resolve().parents[3]
NMEA_DIR = ROOT / "tests" / "data" / "nmea"
GPS_ROLLOVER_MS = 1024 * 7 * 86_400_000
DEGREES_TOLERANCE = 1e-6
_UNIX_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def recording(name: str) -> Path:
    path = NMEA_DIR / name
    if not path.is_file() or not path.with_name(name + ".chk").is_file():
        pytest.fail(f"recording {path} (and its .chk) missing from the repository")
    return path


def nmea_lines(name: str) -> list[str]:
    """The recording's sentences, without gpsd's comment header."""
    text = recording(name).read_text(encoding="ascii", errors="replace")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def iso_ms(text: str) -> int:
    return (datetime.fromisoformat(text) - _UNIX_EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class Tpv:
    """One TPV report of gpsd's, as the `.chk` has it."""

    mode: int
    time_ms: int | None
    lat: float | None
    lon: float | None

    @classmethod
    def from_json(cls, report: dict[str, Any]) -> Tpv:
        time = report.get("time")
        return cls(
            report["mode"], iso_ms(time) if time else None, report.get("lat"), report.get("lon")
        )


def chk_tpvs(name: str) -> list[Tpv]:
    path = recording(name).with_name(name + ".chk")
    reports = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("{"):
            report = json.loads(line)
            if report.get("class") == "TPV":
                reports.append(Tpv.from_json(report))
    return reports


def same_time(a_ms: int | None, b_ms: int | None) -> bool:
    if a_ms is None or b_ms is None:
        return a_ms is b_ms
    return (a_ms - b_ms) % GPS_ROLLOVER_MS == 0


def same_place(
    fix_lat: float, fix_lon: float, tpv: Tpv, tolerance: float = DEGREES_TOLERANCE
) -> bool:
    return (
        tpv.lat is not None
        and tpv.lon is not None
        and abs(fix_lat - tpv.lat) <= tolerance
        and abs(fix_lon - tpv.lon) <= tolerance
    )


def tpvs_at(tpvs: list[Tpv], time_ms: int | None) -> list[Tpv]:
    return [tpv for tpv in tpvs if same_time(tpv.time_ms, time_ms)]


RECORDINGS = [
    "bu353s4.log",
    "ch-4711.log",
    "humminbird-M37.log",
    "magellan-ec10.log",
    "motorola-t805.log",
    "mtk-3301.log",
]
# Where the receiver's GSA says 2D but gpsd reports 3D: gpsd calls a GGA with an altitude
# 3D (mtk-3301 says 2D with three satellites, where 3D is impossible), and keeps 3D from the
# Humminbird's 4-second GGA over the RMC/GLL-only epochs between them. The serial driver
# follows the receiver, epoch by epoch.
GPSD_SAYS_3D_WHERE_RECEIVER_SAYS_2D = {"mtk-3301.log", "ch-4711.log", "humminbird-M37.log"}


def check_against_gpsd(name: str, fixes: list[Fix]) -> None:
    """The serial driver's fixes for a recording agree with gpsd's TPVs in its .chk.

    Every timed position is where gpsd put it at that time, in gpsd's mode (but for the
    2D/3D cases above); every epoch gpsd placed with a time is there; and where gpsd said
    "no fix" with a time, so does the driver, with no position. Untimed fixes (before a
    date is known) cannot be lined up with gpsd's reports and are not compared.
    """
    tpvs = chk_tpvs(name)
    allowed = {(MODE_2D, MODE_3D)} if name in GPSD_SAYS_3D_WHERE_RECEIVER_SAYS_2D else set()
    placed_times = set()
    for fix in fixes:
        if fix.time_ms is None:
            continue
        placed = [tpv for tpv in tpvs_at(tpvs, fix.time_ms) if tpv.lat is not None]
        if not fix.has_position():
            assert placed == [], f"{name}: no fix where gpsd had a position: {fix}"
            continue
        placed_times.add(fix.time_ms % GPS_ROLLOVER_MS)
        if placed:  # gpsd leaves the time off some first fixes: those are not in the .chk
            assert any(same_place(fix.lat, fix.lon, tpv) for tpv in placed), (name, fix, placed)
            modes = {tpv.mode for tpv in placed}
            assert fix.mode in modes or (fix.mode, max(modes)) in allowed, (name, fix, modes)
    gpsd_placed = {tpv.time_ms % GPS_ROLLOVER_MS for tpv in tpvs if tpv.time_ms and tpv.lat}
    assert gpsd_placed <= placed_times, f"{name}: epochs gpsd placed that the driver missed"
    for tpv in tpvs:
        if tpv.mode == MODE_NO_FIX and tpv.time_ms is not None:
            same = [fix for fix in fixes if same_time(fix.time_ms, tpv.time_ms)]
            assert same, f"{name}: no fix for gpsd's no-fix epoch {tpv}"
            assert not any(fix.has_position() for fix in same), (name, same)
