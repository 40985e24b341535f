"""The simulated receiver's NMEA: checksums, pynmea2, the real gpsd (through gpsfake), a pty."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pynmea2
import pytest

from firmware.core.fix import MODE_NO_FIX, Fix
from firmware.drivers.gps import open_gps
from firmware.errors import GpsError
from simulators.gps_error import GpsReceiver
from simulators.nmea import checksum, sentences
from simulators.world import StreetMap, Vehicle
from tests.gpsfake_helpers import GpsFake

START_MS = 1_795_000_000_000


def drive(seconds: int, seed: int = 1) -> list[Fix]:
    streets = StreetMap.generate(seed=seed)
    rng = random.Random(seed)
    vehicle = Vehicle("car", streets, rng)
    vehicle.patrol()
    receiver = GpsReceiver(rng)
    fixes = []
    for second in range(seconds):
        vehicle.step(1.0)
        fixes.append(receiver.observe(vehicle, START_MS + second * 1000))
    return fixes


def test_every_sentence_has_a_valid_checksum_and_parses_to_the_fix() -> None:
    fix = drive(30)[-1]
    lines = sentences(fix)
    kinds = [line[3:6] for line in lines]
    assert kinds[:4] == ["RMC", "VTG", "GGA", "GSA"] and set(kinds[4:]) == {"GSV"}
    for line in lines:
        assert line.endswith("\r\n")
        body, _, sent = line.strip()[1:].partition("*")
        assert sent == checksum(body)
        pynmea2.parse(line.strip(), check=True)
    rmc, _, gga = (pynmea2.parse(line.strip()) for line in lines[:3])
    assert abs(gga.latitude - fix.lat) < 1e-6 and abs(gga.longitude - fix.lon) < 1e-6
    assert int(gga.num_sats) == fix.sats and float(gga.horizontal_dil) == pytest.approx(fix.hdop)
    assert float(rmc.spd_over_grnd) * 0.514444 == pytest.approx(fix.speed_mps, abs=0.01)
    assert rmc.status == "A"


def test_a_searching_receiver_says_so() -> None:
    lines = sentences(Fix(time_ms=START_MS, mode=MODE_NO_FIX, sats=1))
    rmc, _, gga = (pynmea2.parse(line.strip()) for line in lines[:3])
    assert gga.gps_qual == 0 and rmc.status == "V" and gga.latitude == 0.0


@pytest.mark.gpsd
def test_gpsd_reads_the_positions_the_simulator_intended(gpsfake: GpsFake, tmp_path: Path) -> None:
    fixes = drive(20)
    log = tmp_path / "drive.nmea"
    log.write_text("".join(line for fix in fixes for line in sentences(fix)))
    _, port = gpsfake.start(log)
    source = open_gps(f"gpsd://127.0.0.1:{port}")
    seen = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            try:
                fix = source.read()
            except GpsError:  # gpsfake stops its gpsd after the last sentence
                break
            if fix is not None and fix.has_position():
                seen.append(fix)
            time.sleep(0.01)
    finally:
        source.close()
    intended = {fix.time_ms: fix for fix in fixes}
    assert len(seen) >= len(fixes) // 2, f"gpsd reported {len(seen)} of {len(fixes)} epochs"
    for fix in seen:
        want = intended[fix.time_ms]
        assert abs(fix.lat - want.lat) < 1e-6 and abs(fix.lon - want.lon) < 1e-6, (fix, want)
        assert fix.speed_mps == pytest.approx(want.speed_mps, abs=0.01)


def test_the_pty_feeds_the_units_serial_driver() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "balise", "sim", "gps", "--pty", "--duration", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        path = process.stdout.readline().strip()
        assert path.startswith("/dev/pts/"), path
        source = open_gps(f"serial://{path}?baud=9600")
        fixes = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and len(fixes) < 3:
            fix = source.read()
            if fix is not None and fix.has_position():
                fixes.append(fix)
        source.close()
    finally:
        process.terminate()
        process.wait(10)
    assert len(fixes) >= 3, "three epochs, one a second, read through pyserial"
    assert all(abs(f.lat - 34.26) < 0.05 and abs(f.lon + 6.58) < 0.05 for f in fixes)


def test_bad_options_are_named(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "balise", "sim", "gps", "--log", str(tmp_path / "no" / "x.nmea")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "x.nmea: cannot write" in result.stderr
    center = subprocess.run(
        [sys.executable, "-m", "balise", "sim", "gps", "--pty", "--center", "95,0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert center.returncode == 2 and "'95,0': out of range" in center.stderr
