"""The `balise` command: help everywhere, one line and exit status 2 on bad usage."""

import subprocess
import sys

import pytest

from balise.cli import SUBCOMMANDS


def balise(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "balise", *args], capture_output=True, text=True, timeout=60
    )


def test_help_lists_every_subcommand() -> None:
    result = balise("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(name: str) -> None:
    result = balise(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: balise " + name in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "required: COMMAND"),
        (("fly",), "invalid choice: 'fly'"),
        (("provision",), "required: --dir"),
        (("unit", "--config"), "expected one argument"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: tuple[str, ...], words: str) -> None:
    result = balise(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr


def test_version() -> None:
    result = balise("--version")
    assert result.returncode == 0 and result.stdout.startswith("balise ")


def test_a_subcommand_imports_only_its_own_part() -> None:
    """`balise unit` on a Pi has no cryptography (the gateway's extra): it must not need it."""
    probe = (
        "import sys\n"
        "from balise.cli import main\n"
        "try:\n"
        "    main(['unit', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('cryptography', 'gateway.provision', 'gateway.app')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
