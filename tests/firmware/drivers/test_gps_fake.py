"""FakeGps: scripted fixes and NMEA, handed out in the order they were fed."""

from __future__ import annotations

from firmware.core.fix import MODE_2D, MODE_3D, MODE_NO_FIX, Fix
from firmware.drivers.gps import GpsSource
from firmware.drivers.gps_fake import FakeGps
from tests.firmware.drivers.gps_recordings import nmea_lines

GGA = "$GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000*7D"
RMC = "$GPRMC,030719.000,A,3747.0873,S,17518.8938,E,0.69,181.39,311214,,,A*7D"
T0 = 1419995239000  # 2014-12-31T03:07:19Z
NEXT_RMC = "$GPRMC,030720.000,A,3747.0875,S,17518.8938,E,1.15,181.39,311214,,,A*7B"


def test_fed_fixes_come_back_in_order_then_none() -> None:
    gps = FakeGps()
    first = Fix(time_ms=1000, mode=MODE_3D, lat=36.8, lon=10.18)
    second = Fix(time_ms=2000, mode=MODE_NO_FIX)
    gps.feed(first)
    gps.feed(second)
    assert [gps.read(), gps.read(), gps.read()] == [first, second, None]


def test_nmea_lines_make_one_fix_per_epoch() -> None:
    gps = FakeGps()
    gps.feed(GGA)
    gps.feed(RMC)
    fix = gps.read()  # nothing else queued: the epoch is complete, as on a quiet line
    assert fix is not None and fix.mode == MODE_3D and fix.time_ms == T0
    assert gps.read() is None


def test_nmea_text_of_several_lines_and_fixes_keep_their_order() -> None:
    gps = FakeGps()
    scripted = Fix(time_ms=5, mode=MODE_2D, lat=1.0, lon=2.0)
    gps.feed(GGA + "\r\n" + RMC + "\r\n")
    gps.feed(scripted)
    gps.feed(NEXT_RMC)
    fixes = [gps.read(), gps.read(), gps.read(), gps.read()]
    assert fixes[1] == scripted and fixes[3] is None
    assert [fix.time_ms for fix in fixes[:3] if fix] == [T0, 5, T0 + 1000]


def test_a_whole_recording_and_its_counters() -> None:
    gps = FakeGps()
    gps.feed("\n".join(nmea_lines("ch-4711.log")))
    fixes = []
    while (fix := gps.read()) is not None:
        fixes.append(fix)
    assert len(fixes) == 14
    assert gps.counts.ok == 48 and gps.counts.bad_checksum == 0


def test_it_is_a_gps_source() -> None:
    gps: GpsSource = FakeGps()
    gps.close()
    assert isinstance(gps, FakeGps) and gps.closed
