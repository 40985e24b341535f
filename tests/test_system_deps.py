"""scripts/system-deps.sh, the set-up's first step: what each role requires, as a non-root user.

As root the script installs with apt-get, which the set-up of every fresh machine exercises;
here it runs as `nobody` (dropped with setpriv when the tests run as root) on a PATH that holds
only what each test gives it, so what is missing is known.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "system-deps.sh"
NOBODY = 65534
TOOLS = ("bash", "sort", "tr", "id")  # what the script itself runs


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A directory `nobody` can reach (pytest's own is private to its user)."""
    path = Path(tempfile.mkdtemp(prefix="balise-system-deps-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def run(role: str, tmp_path: Path, programs: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in TOOLS:
        found = shutil.which(name)
        assert found, f"{name} is not installed"
        (bin_dir / name).symlink_to(found)
    for name in programs:  # present, as far as `command -v` can tell
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    (tmp_path / "sbin").mkdir(exist_ok=True)
    env = {"PATH": str(bin_dir), "BALISE_SBIN": str(tmp_path / "sbin")}
    # A copy `nobody` can read, wherever the checkout is (a private folder, as mktemp makes).
    script = tmp_path / SCRIPT.name
    shutil.copyfile(SCRIPT, script)
    script.chmod(0o644)
    command = [str(bin_dir / "bash"), str(script), role]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to run the script as a non-root user"
        command = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)


def test_the_demo_runs_without_mosquitto_and_says_how_to_get_it(tmp_path: Path) -> None:
    result = run("demo", tmp_path, ("node", "npm"))
    assert result.returncode == 0, result.stderr
    assert "the demo uses its embedded broker" in result.stderr
    assert "apt-get install -y --no-install-recommends mosquitto" in result.stderr


def test_the_demo_needs_npm_for_the_console_map(tmp_path: Path) -> None:
    result = run("demo", tmp_path, ("node",))
    assert result.returncode == 1
    assert "balise needs these system packages: npm mosquitto" in result.stderr


def test_the_tests_need_every_real_program(tmp_path: Path) -> None:
    result = run("test", tmp_path, ("node", "npm", "mosquitto", "mosquitto_sub"))
    assert result.returncode == 1
    needed = result.stderr.splitlines()[0].split(": ", 1)[1].split()
    assert needed == ["chromium", "gpsd", "gpsd-clients", "librsvg2-bin"], result.stderr
    assert "Run as root:  apt-get update && apt-get install" in result.stderr


def test_nothing_missing_is_nothing_to_say(tmp_path: Path) -> None:
    programs = ("node", "npm", "mosquitto", "mosquitto_sub", "gpsd", "gpsfake", "chromium")
    programs += ("rsvg-convert",)
    for role in ("test", "demo"):
        (tmp_path / role).mkdir(mode=0o755)
        result = run(role, tmp_path / role, programs)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), role


@pytest.mark.parametrize("role", ["", "tests", "install"])
def test_an_unknown_role_is_named(tmp_path: Path, role: str) -> None:
    result = run(role, tmp_path, ())
    if role == "":
        assert result.returncode == 1  # no role is the test role: everything missing
    else:
        assert result.returncode == 2
        assert f"got '{role}'" in result.stderr
