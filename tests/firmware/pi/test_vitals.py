"""firmware/pi/vitals.py: what the Pi can say about its health; what it cannot read is None."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.pi import vitals
from firmware.pi.vitals import Vitals


def test_the_supply_voltage_file_is_read(tmp_path: Path) -> None:
    supply = tmp_path / "in_voltage0_raw"
    supply.write_text("5.08\n")
    assert Vitals(str(tmp_path), str(supply))()["supply_v"] == pytest.approx(5.08)


def test_a_missing_supply_voltage_file_gives_none(tmp_path: Path) -> None:
    assert Vitals(str(tmp_path), str(tmp_path / "missing"))()["supply_v"] is None


def test_a_supply_voltage_file_that_is_not_a_number_gives_none(tmp_path: Path) -> None:
    supply = tmp_path / "supply"
    supply.write_text("n/a\n")
    assert Vitals(str(tmp_path), str(supply))()["supply_v"] is None


def test_no_supply_voltage_file_configured_gives_none(tmp_path: Path) -> None:
    assert Vitals(str(tmp_path))()["supply_v"] is None


def test_free_disk_is_that_of_the_state_dir_in_mb(tmp_path: Path) -> None:
    free_mb = Vitals(str(tmp_path))()["disk_free_mb"]
    assert isinstance(free_mb, int) and free_mb >= 0
    assert Vitals(str(tmp_path / "gone"))()["disk_free_mb"] is None


def test_cpu_temperature_is_read_in_millidegrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    monkeypatch.setattr(vitals, "THERMAL_ZONE", zone)
    assert Vitals(str(tmp_path))()["cpu_temp_c"] == pytest.approx(48.312)
    monkeypatch.setattr(vitals, "THERMAL_ZONE", tmp_path / "no-thermal-zone")
    assert Vitals(str(tmp_path))()["cpu_temp_c"] is None
