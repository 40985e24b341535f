"""NMEA 0183 lines to `Fix`es: verify, parse, and merge the sentences of one receiver epoch.

Pure logic, no I/O: `SerialNmeaSource` feeds it the lines of a serial port, `FakeGps` a
script, the tests whole recordings. Imports pynmea2 (framing, checksum, sentence types and
field names), firmware.core.fix and the standard library; nothing else of ours.

pynmea2 is used for what it does well and no further: its typed field accessors turn an
empty coordinate into 0.0 (a fix on "null island") and hand back the raw string when a
value does not convert, and its time parser rounds .997 s down to .996. So every field the
unit uses is read as the raw text and converted here, strictly: a used sentence whose
field does not convert is counted as unparsable and skipped whole.

What comes from where (any talker: GP, GN, GL, GA, IN...):
- time of day: GGA, RMC or GLL; the date only from a valid RMC (status A), remembered
  and carried over midnight for the epochs that have no RMC. Until a date is known,
  `time_ms` is None. Dates are the receiver's own, passed through as they are.
- position: GGA, else RMC, else GLL; altitude, satellites used and HDOP from GGA
  (HDOP from GSA when there is no GGA).
- speed and course: RMC, else VTG (knots, else km/h).
- mode: no fix when any sentence of the epoch says so (GGA quality 0, 7 manual or
  8 simulated; RMC or GLL status V; GSA mode 1); else GSA's 2D/3D; else 3D when GGA has
  an altitude and 2D when it has not; else 2D from a valid RMC or GLL. A no-fix `Fix`
  carries no position, altitude, speed or course: receivers print placeholders there
  (89°60'N at cold start) or coast on the last position.

An epoch is the run of sentences with one UTC time; sentences without a time (GSA, VTG)
belong to the epoch they arrive in. It completes when a sentence with another time
arrives, or when the caller says the line went quiet (`flush`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, timedelta

import pynmea2

from firmware.core.fix import MODE_2D, MODE_3D, MODE_NO_FIX, Fix

logger = logging.getLogger(__name__)

# 1 international knot = 1852 m per hour = 0.514444... m/s.
MPS_PER_KNOT = 1852 / 3600
MPS_PER_KMH = 1000 / 3600
# GGA fix quality: 0 invalid, 7 manual input, 8 simulator; 1-6 are positions
# (6 is dead reckoning, which a unit in a tunnel still wants reported).
NO_FIX_GGA_QUALITIES = frozenset({0, 7, 8})
# NMEA 0183 caps a sentence at 82 characters; proprietary ones ($PMTKCHN) run longer.
MAX_LINE_CHARS = 1024
# Two-digit RMC years: 80-99 are 1980-1999 (GPS started in 1980), 00-79 are 2000-2079.
GPS_ERA_PIVOT_YY = 80
DAY_MS = 86_400_000
HALF_DAY_MS = DAY_MS // 2
UNIX_EPOCH = date(1970, 1, 1)

_TIME_OF_DAY = re.compile(r"^(\d\d)(\d\d)(\d\d)(?:\.(\d+))?$")
_DDMMYY = re.compile(r"^(\d\d)(\d\d)(\d\d)$")
_DEGREES_MINUTES = re.compile(r"^(\d{1,3})(\d\d(?:\.\d*)?)$")


@dataclass
class NmeaCounts:
    """Every non-blank line fed lands in exactly one of these."""

    ok: int = 0  # a used sentence (GGA, RMC, GSA, VTG, GLL), merged into its epoch
    bad_checksum: int = 0  # checksum wrong or missing: skipped
    unparsable: int = 0  # not an NMEA sentence, or a used one with a field that does not convert
    unknown_type: int = 0  # a well-formed sentence the unit does not use (GSV, $P...): ignored


@dataclass
class _Epoch:
    """What the sentences of one epoch said; each sentence fills the fields it has."""

    tod_ms: int | None = None  # UTC time of day
    gga_quality: int | None = None
    gga_position: tuple[float, float] | None = None
    gga_hdop: float | None = None
    alt_m: float | None = None
    sats: int | None = None
    rmc_valid: bool | None = None
    rmc_position: tuple[float, float] | None = None
    rmc_speed_mps: float | None = None
    rmc_course_deg: float | None = None
    rmc_date: date | None = None
    gll_valid: bool | None = None
    gll_position: tuple[float, float] | None = None
    gsa_mode: int | None = None
    gsa_hdop: float | None = None
    vtg_speed_mps: float | None = None
    vtg_course_deg: float | None = None

    def merge(self, reading: _Epoch) -> None:
        for field in fields(self):
            value = getattr(reading, field.name)
            if value is not None:
                setattr(self, field.name, value)

    def mode(self) -> int:
        if (
            self.gga_quality in NO_FIX_GGA_QUALITIES
            or self.rmc_valid is False
            or self.gll_valid is False
            or self.gsa_mode == MODE_NO_FIX
        ):
            return MODE_NO_FIX
        if self.gsa_mode in (MODE_2D, MODE_3D):
            return self.gsa_mode
        if self.gga_quality is not None:
            return MODE_3D if self.alt_m is not None else MODE_2D
        if self.rmc_valid or self.gll_valid:
            return MODE_2D
        return MODE_NO_FIX


class NmeaAssembler:
    """Feed it NMEA lines; it returns a `Fix` each time a receiver epoch completes."""

    def __init__(self) -> None:
        self.counts = NmeaCounts()
        self._epoch: _Epoch | None = None
        # The last date known and the time of day it was known at: carries the date
        # to epochs without a valid RMC, across midnight.
        self._known_date: tuple[date, int] | None = None

    def feed(self, line: str) -> Fix | None:
        """Take one line; returns the previous epoch's `Fix` when this line starts a new one."""
        reading = self._read(line)
        if reading is None:
            return None
        completed = None
        if (
            self._epoch is not None
            and self._epoch.tod_ms is not None
            and reading.tod_ms is not None
            and reading.tod_ms != self._epoch.tod_ms
        ):
            completed = self.flush()
        if self._epoch is None:
            self._epoch = _Epoch()
        self._epoch.merge(reading)
        return completed

    def flush(self) -> Fix | None:
        """Complete the pending epoch now (the line went quiet, or the input ended)."""
        epoch, self._epoch = self._epoch, None
        return None if epoch is None else self._fix(epoch)

    def _read(self, line: str) -> _Epoch | None:
        """One line to what it says about its epoch, or None (counted) when skipped."""
        text = line.strip()
        if not text:
            return None
        if len(text) > MAX_LINE_CHARS:
            return self._skip("unparsable", text, f"longer than {MAX_LINE_CHARS} characters")
        try:
            sentence = pynmea2.parse(text, check=True)
        except pynmea2.ChecksumError as exc:
            return self._skip("bad_checksum", text, exc)
        except pynmea2.SentenceTypeError as exc:
            return self._skip("unknown_type", text, exc)
        except (pynmea2.ParseError, IndexError) as exc:
            # pynmea2 1.19 raises IndexError on a bodiless proprietary sentence ("$PUBX*..").
            return self._skip("unparsable", text, exc)
        reader = _READERS.get(getattr(sentence, "sentence_type", ""))
        if reader is None:
            return self._skip("unknown_type", text, "not used")
        try:
            reading = reader(sentence)
        except ValueError as exc:
            return self._skip("unparsable", text, exc)
        self.counts.ok += 1
        return reading

    def _skip(self, counter: str, text: str, why: object) -> _Epoch | None:
        """Count and log a skipped line; returns None, for `return self._skip(...)`."""
        setattr(self.counts, counter, getattr(self.counts, counter) + 1)
        logger.debug("NMEA line skipped (%s): %s: %.60r", counter, why, text)
        return None

    def _fix(self, epoch: _Epoch) -> Fix:
        mode = epoch.mode()
        hdop = _first(epoch.gga_hdop, epoch.gsa_hdop)
        time_ms = self._time_ms(epoch)
        if mode == MODE_NO_FIX:
            return Fix(time_ms=time_ms, mode=MODE_NO_FIX, hdop=hdop, sats=epoch.sats)
        position = epoch.gga_position or epoch.rmc_position or epoch.gll_position
        lat, lon = position if position is not None else (None, None)
        return Fix(
            time_ms=time_ms,
            mode=mode,
            lat=lat,
            lon=lon,
            speed_mps=_first(epoch.rmc_speed_mps, epoch.vtg_speed_mps),
            heading_deg=_first(epoch.rmc_course_deg, epoch.vtg_course_deg),
            alt_m=epoch.alt_m,
            hdop=hdop,
            sats=epoch.sats,
        )

    def _time_ms(self, epoch: _Epoch) -> int | None:
        tod_ms = epoch.tod_ms
        if tod_ms is None:
            return None
        if epoch.rmc_valid and epoch.rmc_date is not None:
            day = epoch.rmc_date
        elif self._known_date is not None:
            known_day, known_tod_ms = self._known_date
            day = known_day
            # A time of day far behind the last one known means midnight has passed.
            if tod_ms < known_tod_ms - HALF_DAY_MS:
                day += timedelta(days=1)
            elif tod_ms > known_tod_ms + HALF_DAY_MS:
                day -= timedelta(days=1)
        else:
            return None
        self._known_date = (day, tod_ms)
        return (day - UNIX_EPOCH).days * DAY_MS + tod_ms


# ---- reading the sentences the unit uses ------------------------------------------------


def _raw(sentence: pynmea2.NMEASentence, name: str) -> str:
    """A field's text as sent ('' when absent), not pynmea2's lenient conversion."""
    index = type(sentence).name_to_idx[name]
    data = sentence.data
    return str(data[index]).strip() if index < len(data) else ""


def _first(preferred: float | None, fallback: float | None) -> float | None:
    return preferred if preferred is not None else fallback


def _float(text: str) -> float | None:
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def _int(text: str) -> int | None:
    return int(text) if text else None


def _status(text: str) -> bool | None:
    """RMC/GLL status: A valid, V void; anything else says nothing."""
    return {"A": True, "V": False}.get(text.upper())


def _time_of_day_ms(text: str) -> int | None:
    """hhmmss[.sss] to milliseconds since UTC midnight."""
    if not text:
        return None
    match = _TIME_OF_DAY.match(text)
    if not match:
        raise ValueError(f"bad time of day {text!r}")
    hours, minutes, seconds = (int(group) for group in match.group(1, 2, 3))
    if hours > 23 or minutes > 59 or seconds > 60:  # 60: a leap second
        raise ValueError(f"bad time of day {text!r}")
    millis = int((match.group(4) or "").ljust(3, "0")[:3])
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis


def _date(text: str) -> date | None:
    """ddmmyy to a date, years read in the GPS era (1980-2079)."""
    if not text:
        return None
    match = _DDMMYY.match(text)
    if not match:
        raise ValueError(f"bad date {text!r}")
    day, month, yy = (int(group) for group in match.groups())
    return date(yy + (1900 if yy >= GPS_ERA_PIVOT_YY else 2000), month, day)


def _coordinate(text: str, hemisphere: str, signs: str, limit: float) -> float | None:
    """(d)ddmm.mmmm and its hemisphere letter to signed degrees."""
    if not text and not hemisphere:
        return None
    match = _DEGREES_MINUTES.match(text)
    hemisphere = hemisphere.upper()
    if not match or hemisphere not in signs:
        raise ValueError(f"bad coordinate {text!r} {hemisphere!r}")
    degrees = int(match.group(1)) + float(match.group(2)) / 60
    if degrees > limit:
        raise ValueError(f"coordinate out of range {text!r} {hemisphere!r}")
    return -degrees if hemisphere == signs[1] else degrees


def _position(sentence: pynmea2.NMEASentence) -> tuple[float, float] | None:
    lat = _coordinate(_raw(sentence, "lat"), _raw(sentence, "lat_dir"), "NS", 90)
    lon = _coordinate(_raw(sentence, "lon"), _raw(sentence, "lon_dir"), "EW", 180)
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        raise ValueError("half a position")
    return lat, lon


def _read_gga(sentence: pynmea2.NMEASentence) -> _Epoch:
    return _Epoch(
        tod_ms=_time_of_day_ms(_raw(sentence, "timestamp")),
        gga_quality=_int(_raw(sentence, "gps_qual")),
        gga_position=_position(sentence),
        sats=_int(_raw(sentence, "num_sats")),
        gga_hdop=_float(_raw(sentence, "horizontal_dil")),
        alt_m=_float(_raw(sentence, "altitude")),
    )


def _read_rmc(sentence: pynmea2.NMEASentence) -> _Epoch:
    knots = _float(_raw(sentence, "spd_over_grnd"))
    return _Epoch(
        tod_ms=_time_of_day_ms(_raw(sentence, "timestamp")),
        rmc_valid=_status(_raw(sentence, "status")),
        rmc_position=_position(sentence),
        rmc_speed_mps=None if knots is None else knots * MPS_PER_KNOT,
        rmc_course_deg=_float(_raw(sentence, "true_course")),
        rmc_date=_date(_raw(sentence, "datestamp")),
    )


def _read_gll(sentence: pynmea2.NMEASentence) -> _Epoch:
    return _Epoch(
        tod_ms=_time_of_day_ms(_raw(sentence, "timestamp")),
        gll_valid=_status(_raw(sentence, "status")),
        gll_position=_position(sentence),
    )


def _read_gsa(sentence: pynmea2.NMEASentence) -> _Epoch:
    mode = _int(_raw(sentence, "mode_fix_type"))
    if mode is not None and mode not in (MODE_NO_FIX, MODE_2D, MODE_3D):
        raise ValueError(f"bad GSA fix type {mode!r}")
    return _Epoch(gsa_mode=mode, gsa_hdop=_float(_raw(sentence, "hdop")))


def _read_vtg(sentence: pynmea2.NMEASentence) -> _Epoch:
    if _raw(sentence, "faa_mode").upper() == "N":  # NMEA 2.3: data not valid
        return _Epoch()
    knots = _float(_raw(sentence, "spd_over_grnd_kts"))
    kmh = _float(_raw(sentence, "spd_over_grnd_kmph"))
    if knots is not None:
        speed_mps: float | None = knots * MPS_PER_KNOT
    else:
        speed_mps = None if kmh is None else kmh * MPS_PER_KMH
    return _Epoch(vtg_speed_mps=speed_mps, vtg_course_deg=_float(_raw(sentence, "true_track")))


_READERS: dict[str, Callable[[pynmea2.NMEASentence], _Epoch]] = {
    "GGA": _read_gga,
    "RMC": _read_rmc,
    "GLL": _read_gll,
    "GSA": _read_gsa,
    "VTG": _read_vtg,
}
