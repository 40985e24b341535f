"""GpsdSource: gpsd's reports as Fixes; the real gpsd (through gpsfake) on real recordings.

The mapping and the error paths run against fake_gpsd.FakeGpsd; the tests marked `gpsd`
start gpsd's own gpsfake on a free port with a recording from tests/data/nmea/ and compare what
the driver reads with gpsd's expected reports in the recording's .chk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware.core.fix import MODE_2D, MODE_3D, MODE_NO_FIX, Fix
from firmware.drivers.gps import open_gps
from firmware.drivers.gps_gpsd import GpsdSource, fix_from_gpsd
from firmware.errors import GpsError
from tests.firmware.drivers.fake_gpsd import FakeGpsd, poll
from tests.firmware.drivers.gps_recordings import (
    GPS_ROLLOVER_MS,
    chk_tpvs,
    same_place,
    tpvs_at,
)
from tests.gpsfake_helpers import GpsFake, free_port, stop_group

TPV_3D = {
    "mode": 3,
    "time": "2024-11-22T10:15:30.997Z",
    "lat": 36.8,
    "lon": 10.18,
    "altHAE": 45.1,
    "altMSL": 12.5,
    "alt": 12.5,
    "speed": 5.25,
    "track": 271.0,
    "eph": 7.5,
    "epx": 3.1,
    "epy": 4.2,
}
SKY = {"hdop": 0.9, "nSat": 12, "uSat": 8, "satellites": [{"PRN": 1, "used": True}]}
T0 = 1732270530997  # 2024-11-22T10:15:30.997Z


# ---- the mapping ---------------------------------------------------------------------


def test_a_3d_report_maps_every_field() -> None:
    assert fix_from_gpsd(TPV_3D, SKY) == Fix(
        time_ms=T0,
        mode=MODE_3D,
        lat=36.8,
        lon=10.18,
        speed_mps=5.25,
        heading_deg=271.0,
        alt_m=12.5,  # above mean sea level, not the ellipsoid (altHAE)
        acc_m=7.5,  # eph, gpsd's horizontal error estimate
        hdop=0.9,
        sats=8,
    )


def test_missing_values_stay_none_rather_than_zero() -> None:
    fix = fix_from_gpsd({"mode": 2, "lat": 36.8, "lon": 10.18}, {})
    assert fix == Fix(mode=MODE_2D, lat=36.8, lon=10.18)


def test_older_gpsd_alt_is_used_without_altmsl() -> None:
    assert fix_from_gpsd({"mode": 3, "lat": 1.0, "lon": 2.0, "alt": 99.5}, {}).alt_m == 99.5


def test_no_satellite_list_means_sats_unknown_not_zero() -> None:
    # gpsd says uSat 0 when the receiver sends no GSA/GSV (motorola-t805 does not).
    assert fix_from_gpsd(TPV_3D, {"hdop": 2.2, "nSat": 0, "uSat": 0}).sats is None


def test_older_gpsd_without_usat_counts_the_satellites_used() -> None:
    satellites = [{"PRN": 1, "used": True}, {"PRN": 2, "used": False}, {"PRN": 3, "used": True}]
    assert fix_from_gpsd(TPV_3D, {"satellites": satellites}).sats == 2


@pytest.mark.parametrize("mode", [0, 1, None, "3"])
def test_no_fix_reports_carry_no_position(mode: object) -> None:
    tpv = {**TPV_3D, "mode": mode}
    fix = fix_from_gpsd(tpv, SKY)
    assert fix == Fix(time_ms=T0, mode=MODE_NO_FIX, hdop=0.9, sats=8)


@pytest.mark.parametrize(
    "change",
    [{"time": "yesterday"}, {"time": 1732270530}, {"lat": "36.8"}, {"speed": True}],
)
def test_bad_values_raise(change: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        fix_from_gpsd({**TPV_3D, **change}, SKY)


# ---- reading, against a scripted gpsd ------------------------------------------------------


@pytest.fixture
def fake_gpsd() -> Iterator[FakeGpsd]:
    server = FakeGpsd()
    yield server
    server.close()


@pytest.fixture
def sources() -> Iterator[list[GpsdSource]]:
    """Sources a test makes; all closed after it (gpsd-py3 holds one connection per process)."""
    made: list[GpsdSource] = []
    yield made
    for source in made:
        source.close()


def connected(port: int, sources: list[GpsdSource], timeout_s: float = 2.0) -> GpsdSource:
    source = GpsdSource("127.0.0.1", port, timeout_s=timeout_s)
    sources.append(source)
    source.connect()
    return source


def test_read_returns_a_fix_only_when_gpsd_has_a_new_one(
    fake_gpsd: FakeGpsd, sources: list[GpsdSource]
) -> None:
    later = {**TPV_3D, "time": "2024-11-22T10:15:31.997Z"}
    fake_gpsd.answers = [poll(active=0), poll(TPV_3D, sky=SKY), poll(TPV_3D, sky=SKY)]
    fake_gpsd.answers += [poll(later, sky=SKY)]
    source = connected(fake_gpsd.port, sources)
    assert source.read() is None  # no device yet
    first = source.read()
    assert first is not None and first.time_ms == T0
    assert source.read() is None  # the same report again
    second = source.read()
    assert second is not None and second.time_ms == T0 + 1000


def test_a_report_that_does_not_map_is_counted_and_skipped(
    fake_gpsd: FakeGpsd, sources: list[GpsdSource]
) -> None:
    fake_gpsd.answers = [poll({**TPV_3D, "time": "soon"}), poll(TPV_3D)]
    source = connected(fake_gpsd.port, sources)
    assert source.read() is None
    assert source.bad_reports == 1
    assert source.read() is not None


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("", "closed the connection"),
        ('{"class":"TPV","mode":3}', "expected a POLL answer"),
        ("not json", "bad JSON"),
    ],
)
def test_a_broken_gpsd_raises_gps_error_naming_it(
    fake_gpsd: FakeGpsd, sources: list[GpsdSource], answer: str, message: str
) -> None:
    fake_gpsd.answers = [answer]
    source = connected(fake_gpsd.port, sources)
    with pytest.raises(GpsError, match=f"127.0.0.1:{fake_gpsd.port}.*{message}"):
        source.read()
    with pytest.raises(GpsError, match="not connected"):
        source.read()  # until connected again
    fake_gpsd.answers = [poll(TPV_3D)]
    fake_gpsd.polls = 0
    source.connect()
    assert source.read() is not None


def test_gpsd_not_reachable_raises_gps_error_naming_host_and_port(
    sources: list[GpsdSource],
) -> None:
    port = free_port()
    with pytest.raises(GpsError, match=f"gpsd 127.0.0.1:{port} is not reachable"):
        connected(port, sources)


def test_a_silent_server_fails_within_the_timeout(sources: list[GpsdSource]) -> None:
    silent = FakeGpsd(greeting=None)
    started = time.monotonic()
    with pytest.raises(GpsError, match=r"not reachable.*timed out"):
        connected(silent.port, sources, timeout_s=0.3)
    assert time.monotonic() - started < 2
    silent.close()


def test_something_else_than_gpsd_is_refused(sources: list[GpsdSource]) -> None:
    web = FakeGpsd(greeting="HTTP/1.1 400 Bad Request")
    with pytest.raises(GpsError, match="no gpsd greeting"):
        connected(web.port, sources)
    web.close()


def test_one_connection_per_process(fake_gpsd: FakeGpsd, sources: list[GpsdSource]) -> None:
    fake_gpsd.answers = [poll(TPV_3D)]
    first = connected(fake_gpsd.port, sources)
    with pytest.raises(GpsError, match="one connection per process"):
        connected(fake_gpsd.port, sources)
    first.close()
    first.close()  # twice is fine
    assert connected(fake_gpsd.port, sources).read() is not None


def test_read_before_connect_raises() -> None:
    with pytest.raises(GpsError, match="not connected"):
        GpsdSource("127.0.0.1", 2947).read()


# ---- the real gpsd, replaying real receivers ---------------------------------------------

# gpsfake writes one sentence every CYCLE_SECONDS; the driver polls about 3 times as often.
CYCLE_SECONDS = 0.05
POLL_SECONDS = 0.015
REPLAY_LIMIT_SECONDS = 20
MAX_UNALIGNED = 3


def replay(name: str, log_dir: Path) -> list[Fix]:
    """Every fix GpsdSource reads while gpsfake replays the recording once."""
    process, port = GpsFake(log_dir, CYCLE_SECONDS).start(name)
    try:
        source = open_gps(f"gpsd://127.0.0.1:{port}")
        fixes = []
        deadline = time.monotonic() + REPLAY_LIMIT_SECONDS
        try:
            while time.monotonic() < deadline:
                try:
                    fix = source.read()
                except GpsError as exc:  # gpsfake stops gpsd after the last sentence
                    assert f"127.0.0.1:{port}" in str(exc)
                    return fixes
                if fix is not None:
                    fixes.append(fix)
                time.sleep(POLL_SECONDS)
        finally:
            source.close()
    finally:
        stop_group(process)
    pytest.fail(f"{name}: replay still running after {REPLAY_LIMIT_SECONDS} s")


@pytest.fixture(scope="module")
def gpsd_replay(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], list[Fix]]:
    """replay(name): the fixes read from a recording through gpsd, replayed once per module."""
    log_dir = tmp_path_factory.mktemp("gpsfake")
    replays: dict[str, list[Fix]] = {}

    def replayed(name: str) -> list[Fix]:
        if name not in replays:
            replays[name] = replay(name, log_dir)
        return replays[name]

    return replayed


# Recordings with TPV fixes in their .chk, and what each one exercises here. Not
# humminbird-M37: gpsd keeps its mode 3D over the GLL/RMC epochs between two GGAs, and
# which partial report a poll catches there varies from run to run.
GPSD_RECORDINGS = {
    "bu353s4.log": "steady 3D fix, GSV: hdop, sats and eph",
    "motorola-t805.log": "a 2-epoch dropout in the middle: no-fix reports between fixes",
    "ch-4711.log": "GN talkers; loses lock at the end while the receiver coasts",
    "mtk-3301.log": "cold start: placeholder 89°60'N positions that gpsd calls no fix",
    "magellan-ec10.log": "RMC only: no fix, then 2D, then no fix",
}


@pytest.mark.gpsd
@pytest.mark.parametrize("name", list(GPSD_RECORDINGS))
def test_gpsd_positions_match_gpsds_own_reports(
    gpsd_replay: Callable[[str], list[Fix]], name: str
) -> None:
    fixes = gpsd_replay(name)
    tpvs = chk_tpvs(name)
    placed = [fix for fix in fixes if fix.has_position()]
    assert placed, f"{name}: no position read"
    unaligned = 0
    for fix in placed:
        at_that_time = [tpv for tpv in tpvs_at(tpvs, fix.time_ms) if tpv.lat is not None]
        if fix.time_ms is not None and at_that_time:
            # A poll can catch gpsd mid-epoch: the position is in, the GSA that makes
            # it 3D not yet (the .chk keeps only the epoch's final report).
            assert any(
                fix.mode in (tpv.mode, MODE_2D) and same_place(fix.lat, fix.lon, tpv)
                for tpv in at_that_time
            ), f"{name}: {fix} is not gpsd's report for that time: {at_that_time}"
        else:
            # No time yet (gpsd's first reports after it opens the device), or an epoch the
            # .chk's older gpsd reported without a time (mtk-3301's first fix): the position
            # is still one gpsd reported.
            unaligned += 1
            assert any(same_place(fix.lat, fix.lon, tpv) for tpv in tpvs), f"{name}: {fix}"
    assert unaligned <= MAX_UNALIGNED, (name, unaligned)
    assert all(abs(fix.lat) < 89 for fix in placed), "a cold-start placeholder leaked"
    # Polling sees most epochs (gpsd's first second goes to probing the new device).
    gpsd_epochs = {tpv.time_ms % GPS_ROLLOVER_MS for tpv in tpvs if tpv.time_ms and tpv.lat}
    seen = {fix.time_ms % GPS_ROLLOVER_MS for fix in placed if fix.time_ms is not None}
    assert len(seen & gpsd_epochs) >= len(gpsd_epochs) // 2, (name, sorted(gpsd_epochs - seen))
    for fix in fixes:
        if fix.mode == MODE_NO_FIX:
            assert (fix.lat, fix.lon, fix.speed_mps, fix.alt_m) == (None,) * 4
            assert fix.acc_m is None


@pytest.mark.gpsd
@pytest.mark.parametrize("name", ["motorola-t805.log", "ch-4711.log"])
def test_gpsd_no_fix_stretches_give_no_positions(
    gpsd_replay: Callable[[str], list[Fix]], name: str
) -> None:
    fixes = gpsd_replay(name)
    tpvs = chk_tpvs(name)
    lost = [fix for fix in fixes if fix.mode == MODE_NO_FIX and fix.time_ms is not None]
    assert lost, f"{name}: the no-fix stretch was not read"
    for fix in lost:
        assert not fix.has_position()
        at_that_time = tpvs_at(tpvs, fix.time_ms)
        assert not any(tpv.lat is not None for tpv in at_that_time), (name, fix, at_that_time)
    first_lost = fixes.index(lost[0])
    assert any(fix.has_position() for fix in fixes[:first_lost]), "a fix came before the loss"
    if name == "motorola-t805.log":  # the dropout ends: the fix comes back
        assert any(fix.has_position() for fix in fixes[fixes.index(lost[-1]) :])
