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
