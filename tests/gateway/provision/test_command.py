"""`python -m balise provision` as a user runs it: exit status, stdout and stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def balise(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "balise", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bad_unit_id_is_one_line_on_stderr_and_exit_2(tmp_path: Path) -> None:
    result = balise("provision", "--dir", str(tmp_path / "d"), "--units", "KEN-M01,KEN M01")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "balise provision: bad unit id 'KEN M01': use 1-32 of A-Z a-z 0-9 _ -"
    ]
    assert result.stdout == ""
    assert not (tmp_path / "d").exists()


def test_success_says_where_things_are_and_how_to_start_the_broker(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    result = balise("provision", "--dir", str(directory), "--units", "KEN-M01")
    assert result.returncode == 0, result.stderr
    assert f"mosquitto -c {directory / 'mosquitto.conf'}" in result.stdout
    assert str(directory / "units") in result.stdout
    assert result.stderr == ""


def test_vehicle_types_go_to_the_gateways_fleet_table_and_a_rerun_keeps_them(
    tmp_path: Path,
) -> None:
    from gateway import config

    target = tmp_path / "deploy"
    assert (
        balise("provision", "--dir", str(target), "--units", "KEN-M01:motorcycle").returncode == 0
    )
    added = balise("provision", "--dir", str(target), "--units", "KEN-C01:car,KEN-X1")
    assert added.returncode == 0, added.stderr
    fleet = config.load(target / "gateway.toml").fleet
    assert fleet == {"KEN-M01": "motorcycle", "KEN-C01": "car"}  # KEN-X1: type unknown


def test_an_unknown_vehicle_type_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = balise("provision", "--dir", str(tmp_path / "d"), "--units", "KEN-M01:tank")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("vehicle type 'tank' is not one of motorcycle, car")
    assert not (tmp_path / "d").exists()
