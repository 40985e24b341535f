"""NmeaAssembler: NMEA lines in, one Fix per receiver epoch out; bad lines counted and skipped."""

from __future__ import annotations

from functools import reduce

import pytest

from firmware.core.fix import MODE_2D, MODE_3D, MODE_NO_FIX, Fix
from firmware.drivers.gps_nmea import MPS_PER_KNOT, NmeaAssembler, NmeaCounts
from tests.firmware.drivers.gps_recordings import RECORDINGS, check_against_gpsd, nmea_lines

# 2024-11-22 (a Friday) 10:15:30 UTC
DAY_MS = 1732233600000
T0 = DAY_MS + (10 * 3600 + 15 * 60 + 30) * 1000


def nmea(body: str) -> str:
    """A sentence with its checksum, as a receiver sends it."""
    checksum = reduce(lambda acc, char: acc ^ ord(char), body, 0)
    return f"${body}*{checksum:02X}\r\n"


def gga(hhmmss: str = "101530.00", quality: int = 1, alt: str = "12.5", talker: str = "GP") -> str:
    return nmea(f"{talker}GGA,{hhmmss},3648.1234,N,01010.5678,E,{quality},08,0.9,{alt},M,32.1,M,,")


def rmc(
    hhmmss: str = "101530.00", status: str = "A", knots: str = "10.0", talker: str = "GP"
) -> str:
    return nmea(f"{talker}RMC,{hhmmss},{status},3648.1234,N,01010.5678,E,{knots},45.5,221124,,,A")


def gsa(mode: int = 3) -> str:
    return nmea(f"GPGSA,A,{mode},01,02,03,04,05,06,07,08,,,,,1.6,0.9,1.3")


def feed_all(assembler: NmeaAssembler, *lines: str) -> list[Fix]:
    fixes = [assembler.feed(line) for line in lines] + [assembler.flush()]
    return [fix for fix in fixes if fix is not None]


LAT = 36 + 48.1234 / 60
LON = 10 + 10.5678 / 60


def test_one_epoch_merges_gga_gsa_rmc_into_one_fix() -> None:
    assembler = NmeaAssembler()
    assert assembler.feed(gga()) is None
    assert assembler.feed(gsa()) is None
    assert assembler.feed(rmc()) is None
    fix = assembler.feed(gga("101531.00"))  # the next epoch's first sentence completes it
    assert fix == Fix(
        time_ms=T0,
        mode=MODE_3D,
        lat=pytest.approx(LAT, abs=1e-9),
        lon=pytest.approx(LON, abs=1e-9),
        speed_mps=pytest.approx(10 * 0.514444, abs=1e-5),
        heading_deg=45.5,
        alt_m=12.5,
        hdop=0.9,
        sats=8,
    )
    assert assembler.counts == NmeaCounts(ok=4)


def test_flush_completes_the_pending_epoch_once() -> None:
    assembler = NmeaAssembler()
    assembler.feed(rmc())
    fix = assembler.flush()
    assert fix is not None and fix.time_ms == T0 and fix.mode == MODE_2D
    assert assembler.flush() is None


def test_south_and_west_are_negative() -> None:
    line = nmea("GPRMC,101530,A,3747.0873,S,07140.5596,W,0.0,,221124,,")
    [fix] = feed_all(NmeaAssembler(), line)
    assert fix.lat == pytest.approx(-(37 + 47.0873 / 60))
    assert fix.lon == pytest.approx(-(71 + 40.5596 / 60))


def test_knots_are_converted_exactly() -> None:
    assert MPS_PER_KNOT == 1852 / 3600  # the definition; 0.514444 to six places
    [fix] = feed_all(NmeaAssembler(), rmc(knots="100.0"))
    assert fix.speed_mps == pytest.approx(51.4444444, abs=1e-6)


def test_vtg_gives_speed_and_course_when_there_is_no_rmc() -> None:
    [in_knots] = feed_all(NmeaAssembler(), gga(), nmea("GPVTG,77.5,T,93.3,M,5.2,N,9.7,K,A"))
    assert in_knots.speed_mps == pytest.approx(5.2 * 1852 / 3600)
    assert in_knots.heading_deg == 77.5
    [in_kmh] = feed_all(NmeaAssembler(), gga(), nmea("GPVTG,77.5,T,,M,,N,36.0,K,A"))
    assert in_kmh.speed_mps == pytest.approx(10.0)


def test_rmc_speed_wins_over_vtg() -> None:
    vtg = nmea("GPVTG,10.0,T,,M,1.0,N,1.9,K,A")
    [fix] = feed_all(NmeaAssembler(), gga(), vtg, rmc(knots="2.0"))
    assert fix.speed_mps == pytest.approx(2 * MPS_PER_KNOT)
    assert fix.heading_deg == 45.5


def test_gn_talker_and_mixed_talkers_in_one_epoch() -> None:
    lines = [gga(talker="GN"), rmc(talker="GN"), nmea("GNGSA,A,2,19,27,,,,,,,,,,,2.1,1.8,0.9")]
    lines.append(gga("101531.00", talker="GP"))
    assembler = NmeaAssembler()
    [first, second] = feed_all(assembler, *lines)
    assert (first.time_ms, first.mode, first.speed_mps) == (
        T0,
        MODE_2D,
        pytest.approx(5.14444, 1e-5),
    )
    assert second.time_ms == T0 + 1000
    assert assembler.counts.ok == 4


def test_bad_checksum_is_counted_and_skipped() -> None:
    good = rmc()
    wrong = good[:-4] + ("00" if good[-4:-2] != "00" else "01") + "\r\n"
    assembler = NmeaAssembler()
    assert feed_all(assembler, wrong, nmea("GPGSA,A,1,,,,,,,,,,,,,,,")) == [Fix(mode=MODE_NO_FIX)]
    assert assembler.counts == NmeaCounts(ok=1, bad_checksum=1)


def test_missing_checksum_is_counted_as_bad() -> None:
    assembler = NmeaAssembler()
    assert feed_all(assembler, "$POLYN,TIME,RESTART_OCCURRED", rmc().split("*")[0]) == []
    assert assembler.counts == NmeaCounts(bad_checksum=2)


def test_lower_case_checksum_is_good() -> None:
    assembler = NmeaAssembler()
    assert feed_all(assembler, "$GPRMC,205150.00,V,,,,,,,,,,,V*4a") == [Fix(mode=MODE_NO_FIX)]
    assert assembler.counts == NmeaCounts(ok=1)


@pytest.mark.parametrize(
    "line",
    [
        "hello",
        "$",
        "\x00\xff\xfe GPGGA",
        "$GPGGA,101530.00,3648.1234,N*ZZ",
        nmea("GPGGA,1015xx.00,3648.1234,N,01010.5678,E,1,08,0.9,12.5,M,,,,"),  # bad time
        nmea("GPGGA,101530.00,3648.1234,N,,,1,08,0.9,12.5,M,,,,"),  # half a position
        nmea("GPGGA,101530.00,3648.1234,X,01010.5678,E,1,08,0.9,12.5,M,,,,"),  # no hemisphere
        nmea("GPGGA,101530.00,9148.1234,N,01010.5678,E,1,08,0.9,12.5,M,,,,"),  # beyond a pole
        nmea("GPGGA,101530.00,3648.1234,N,01010.5678,E,1,08,0.9,nan,M,,,,"),  # not finite
        nmea("GPRMC,101530.00,A,3648.1234,N,01010.5678,E,fast,45.5,221124,,,A"),
        nmea("GPRMC,101530.00,A,3648.1234,N,01010.5678,E,1.0,45.5,311124,,,A"),  # 31 Nov
        nmea("GPGSA,A,4,,,,,,,,,,,,,,,"),  # fix type 4
        nmea("PUBX"),  # pynmea2 1.19 raises IndexError on it
        "$GPGGA," + "9" * 2000,
    ],
)
def test_garbage_is_counted_as_unparsable_and_skipped(line: str) -> None:
    assembler = NmeaAssembler()
    assert feed_all(assembler, gga(), line, rmc()) == feed_all(NmeaAssembler(), gga(), rmc())
    assert assembler.counts == NmeaCounts(ok=2, unparsable=1)


def test_sentences_the_unit_does_not_use_are_counted_as_unknown() -> None:
    gsv = nmea("GPGSV,3,1,12,17,72,207,32,28,59,095,31,06,35,347,25,01,29,132,23")
    lines = [gsv, nmea("PMTK010,001"), nmea("INDPT,2.2,0.0"), nmea("GPXYZ,1,2")]
    assembler = NmeaAssembler()
    assert feed_all(assembler, *lines, "", "   ") == []
    assert assembler.counts == NmeaCounts(unknown_type=4)  # blank lines are not counted


def test_gga_quality_zero_is_no_fix_without_the_placeholder_position() -> None:
    cold_start = [
        nmea("GPGGA,235946.005,8960.000000,N,00000.000000,E,0,0,,137.000,M,13.000,M,,"),
        nmea("GPRMC,235946.005,V,8960.000000,N,00000.000000,E,0.000,0.00,050180,,,N"),
        nmea("GPVTG,0.00,T,,M,0.000,N,0.000,K,N"),
    ]
    [fix] = feed_all(NmeaAssembler(), *cold_start)
    assert fix == Fix(mode=MODE_NO_FIX, sats=0)  # no date learnt from a void RMC: no time
    assert not fix.has_position()


@pytest.mark.parametrize(
    "lines",
    [
        [gga(quality=0), rmc()],
        [gga(), rmc(status="V")],
        [gga(), gsa(mode=1), rmc()],
        [nmea("GPGLL,3648.1234,N,01010.5678,E,101530.00,V,N")],
    ],
    ids=["gga-quality-0", "rmc-void", "gsa-no-fix", "gll-void"],
)
def test_any_no_fix_sentence_makes_the_epoch_no_fix(lines: list[str]) -> None:
    [fix] = feed_all(NmeaAssembler(), *lines)
    assert fix.mode == MODE_NO_FIX
    assert (fix.lat, fix.lon, fix.speed_mps, fix.heading_deg, fix.alt_m) == (None,) * 5


@pytest.mark.parametrize(
    ("lines", "mode"),
    [
        ([gga(), gsa(mode=2), rmc()], MODE_2D),  # the receiver's own word wins
        ([gga(), rmc()], MODE_3D),  # no GSA: an altitude makes it 3D
        ([gga(alt=""), rmc()], MODE_2D),
        ([rmc()], MODE_2D),
        ([nmea("GPGLL,3648.1234,N,01010.5678,E,101530.00,A,A")], MODE_2D),
        ([nmea("GPVTG,77.5,T,,M,5.2,N,9.7,K,A")], MODE_NO_FIX),  # nothing says there is a fix
    ],
)
def test_mode(lines: list[str], mode: int) -> None:
    [fix] = feed_all(NmeaAssembler(), *lines)
    assert fix.mode == mode


def test_time_is_none_until_a_valid_rmc_gives_the_date() -> None:
    assembler = NmeaAssembler()
    fixes = feed_all(assembler, gga("101530"), gga("101531"), rmc("101532"), gga("101533"))
    assert [fix.time_ms for fix in fixes] == [None, None, T0 + 2000, T0 + 3000]
    assert all(fix.has_position() for fix in fixes)


def test_the_known_date_rolls_over_midnight() -> None:
    before = nmea("GPRMC,235959.50,A,3648.1234,N,01010.5678,E,0.0,,221124,,,A")
    fixes = feed_all(NmeaAssembler(), before, gga("000000.50"), gga("000001.50"))
    midnight = DAY_MS + 86_400_000
    assert [fix.time_ms for fix in fixes] == [midnight - 500, midnight + 500, midnight + 1500]


def test_fractions_of_a_second_are_exact_milliseconds() -> None:
    fixes = feed_all(NmeaAssembler(), rmc("101530.997"), rmc("101531.5"), rmc("101532.12345"))
    assert [fix.time_ms - T0 for fix in fixes] == [997, 1500, 2123]


def test_time_going_backwards_still_starts_a_new_epoch() -> None:
    fixes = feed_all(NmeaAssembler(), rmc("101524"), rmc("101511"))
    assert [fix.time_ms - T0 for fix in fixes] == [-6000, -19000]


def test_old_dates_are_passed_through() -> None:
    line = nmea("GPRMC,212614.879,A,4839.9488,N,00214.8863,E,0.56,344.41,181207,0,A")
    [fix] = feed_all(NmeaAssembler(), line)
    assert fix.time_ms == 1198013174879  # 2007-12-18T21:26:14.879Z, as the receiver says


# ---- whole recordings of real receivers against gpsd's own reading of them --------------


def assemble(lines: list[str]) -> tuple[list[Fix], NmeaCounts]:
    assembler = NmeaAssembler()
    return feed_all(assembler, *lines), assembler.counts


@pytest.mark.parametrize("name", RECORDINGS)
def test_recordings_agree_with_gpsd(name: str) -> None:
    fixes, counts = assemble(nmea_lines(name))
    check_against_gpsd(name, fixes)
    assert counts.unparsable == 0


def test_recording_counters() -> None:
    # mtk-3301: three $POLYN lines carry no checksum; $PMTK and GSV are not used.
    assert assemble(nmea_lines("mtk-3301.log"))[1] == NmeaCounts(
        ok=36, bad_checksum=3, unknown_type=20
    )
    # humminbird-M37: depth (DPT), water temperature (MTW) and ZDA are well-formed, not used.
    humminbird = assemble(nmea_lines("humminbird-M37.log"))[1]
    assert humminbird == NmeaCounts(ok=41, unknown_type=57)


def test_coasting_positions_after_losing_lock_are_not_fixes() -> None:
    fixes, _ = assemble(nmea_lines("ch-4711.log"))
    lost = [fix for fix in fixes if fix.mode == MODE_NO_FIX]
    assert len(lost) == 7 and not any(fix.has_position() for fix in lost)
    assert fixes[-1].time_ms is not None  # the date learnt before carries on
