"""`balise unit` as a user runs it: every mistake ends with exit status 2 and one line naming it.

Each case runs `python -m balise unit ...` as a process with a bad configuration file, GPS URL
or state dir; none gets as far as connecting. The configurations start from the one
`balise provision` wrote for KEN-M01 (no broker runs: the unit stops before it would connect).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.firmware.pi.unit_helpers import ROOT, UNIT
from tests.mqtt_helpers import Deployment

CLI_TIMEOUT_S = 30
SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
# Not under systemd, whatever runs the tests; the package from this checkout.
ENV = {
    **{key: value for key, value in os.environ.items() if key not in SYSTEMD_VARIABLES},
    "PYTHONPATH": str(ROOT),
}


def balise_unit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "balise", "unit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env=ENV,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a run that failed the way a user error should."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("balise unit: "), lines
    return lines[0]


@pytest.fixture
def unit_document(deployment: Deployment) -> dict[str, Any]:
    with (deployment.directory / "units" / f"{UNIT}.toml").open("rb") as stream:
        document: dict[str, Any] = tomllib.load(stream)
    document["broker"]["ca_file"] = str(deployment.ca_cert)
    return document


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(document))
    return path


def test_help_works(tmp_path: Path) -> None:
    result = balise_unit("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout and "--gps" in result.stdout
    assert "--state-dir" in result.stdout and "--fake-gpio" in result.stdout


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    line = one_line_error(balise_unit("--config", "missing.toml", cwd=tmp_path))
    assert "missing.toml" in line and "cannot read" in line


def test_a_config_that_is_not_toml_is_named(tmp_path: Path) -> None:
    (tmp_path / "unit.toml").write_text('[unit]\nid = "KEN-M01\n')
    line = one_line_error(balise_unit("--config", "unit.toml", cwd=tmp_path))
    assert "unit.toml: not valid TOML" in line


def test_a_config_that_is_not_utf8_is_bad_toml_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "unit.toml").write_bytes(b'[unit]\nid = "KEN-M01\xff"\n')
    line = one_line_error(balise_unit("--config", "unit.toml", cwd=tmp_path))
    assert "unit.toml: not valid TOML: not UTF-8" in line


def test_a_missing_broker_table_is_named(tmp_path: Path, unit_document: dict[str, Any]) -> None:
    del unit_document["broker"]
    write(tmp_path / "unit.toml", unit_document)
    line = one_line_error(balise_unit("--config", "unit.toml", cwd=tmp_path))
    assert "unit.toml: [broker]: missing table" in line


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_a_broker_port_out_of_range_is_named(
    tmp_path: Path, unit_document: dict[str, Any], port: int
) -> None:
    unit_document["broker"]["port"] = port
    write(tmp_path / "unit.toml", unit_document)
    line = one_line_error(balise_unit("--config", "unit.toml", cwd=tmp_path))
    assert f"broker.port: must be 1-65535, got {port}" in line


def test_an_unknown_core_setting_is_named(tmp_path: Path, unit_document: dict[str, Any]) -> None:
    unit_document["core"] = {"threshold_m": 10, "treshold_m": 10}
    write(tmp_path / "unit.toml", unit_document)
    line = one_line_error(balise_unit("--config", "unit.toml", cwd=tmp_path))
    assert "unknown setting treshold_m" in line


def test_a_bad_button_action_is_named(tmp_path: Path, unit_document: dict[str, Any]) -> None:
    unit_document["buttons"] = {"b1": "available", "b2": "lunch", "sos": "sos"}
    write(tmp_path / "unit.toml", unit_document)
    line = one_line_error(balise_unit("--config", "unit.toml", cwd=tmp_path))
    assert "buttons.b2: unknown action 'lunch'" in line


def test_a_pin_off_the_header_is_named(tmp_path: Path, unit_document: dict[str, Any]) -> None:
    unit_document["pins"] = {"sos": 99}
    write(tmp_path / "unit.toml", unit_document)
    line = one_line_error(balise_unit("--config", "unit.toml", cwd=tmp_path))
    assert "pins.sos: must be a BCM GPIO number 0-27, got 99" in line


def test_a_button_without_a_pin_is_named(tmp_path: Path, unit_document: dict[str, Any]) -> None:
    unit_document["buttons"] = {"b1": "available", "b5": "busy", "sos": "sos"}
    write(tmp_path / "unit.toml", unit_document)
    args = ["--config", "unit.toml", "--fake-gpio", "--state-dir", "state"]
    line = one_line_error(balise_unit(*args, cwd=tmp_path))
    assert "unit.toml: pins: no pin for b5, b5_led" in line


def test_a_ca_file_that_does_not_load_is_named(
    tmp_path: Path, unit_document: dict[str, Any]
) -> None:
    unit_document["broker"]["ca_file"] = "no-such-ca.crt"
    write(tmp_path / "unit.toml", unit_document)
    args = ["--config", "unit.toml", "--fake-gpio", "--state-dir", "state"]
    line = one_line_error(balise_unit(*args, cwd=tmp_path))
    assert "broker.ca_file" in line and "no-such-ca.crt" in line


def test_an_unknown_gps_url_is_named(tmp_path: Path, unit_document: dict[str, Any]) -> None:
    write(tmp_path / "unit.toml", unit_document)
    args = ["--config", "unit.toml", "--fake-gpio", "--state-dir", "state", "--gps", "bogus://x"]
    line = one_line_error(balise_unit(*args, cwd=tmp_path))
    assert "GPS URL 'bogus://x'" in line and "unknown scheme" in line


def test_a_serial_port_that_is_not_there_is_named(
    tmp_path: Path, unit_document: dict[str, Any]
) -> None:
    write(tmp_path / "unit.toml", unit_document)
    gps = f"serial://{tmp_path}/ttyNOPE?baud=9600"
    args = ["--config", "unit.toml", "--fake-gpio", "--state-dir", "state", "--gps", gps]
    line = one_line_error(balise_unit(*args, cwd=tmp_path))
    assert f"{tmp_path}/ttyNOPE" in line


def test_a_state_dir_that_cannot_be_created_is_named(
    tmp_path: Path, unit_document: dict[str, Any]
) -> None:
    write(tmp_path / "unit.toml", unit_document)
    (tmp_path / "a-file").write_text("not a directory\n")
    args = ["--config", "unit.toml", "--fake-gpio", "--state-dir", "a-file/state"]
    line = one_line_error(balise_unit(*args, cwd=tmp_path))
    assert "state dir a-file/state: cannot create" in line
