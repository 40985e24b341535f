"""The `balise` command and its subcommands.

Each subcommand lives in the package that does the work and exposes two
functions: `add_arguments(parser)` and `run(args) -> int`. They are imported
only when chosen, so `balise --help` works on a machine with no drivers.
Errors the user can cause (the packages' root exceptions) end the program
with exit status 2 and one line that says what was wrong.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from balise import __version__
from firmware.errors import FirmwareError
from gateway.errors import GatewayError
from protocol.errors import ProtocolError
from simulators.errors import SimulatorError

USER_ERRORS = (ProtocolError, FirmwareError, GatewayError, SimulatorError)

# name -> (module with add_arguments/run, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "provision": (
        "gateway.provision.command",
        "write a secured broker deployment: CA, certificates, users, ACL, configs",
    ),
    "unit": (
        "firmware.pi.main",
        "run a unit: GPS, buttons, LEDs and buzzer, reporting over MQTT",
    ),
    "gateway": (
        "gateway.app",
        "run the gateway: MQTT ingest, store, live state, HTTP API and live feed",
    ),
    "users": ("gateway.commands.users", "add dispatcher accounts to the gateway"),
    "tokens": ("gateway.commands.tokens", "create bearer tokens for machine clients"),
    "sim": ("simulators.command", "simulators: a fleet of units, GPS, faults"),
    "demo": ("simulators.demo", "the whole system on this machine: broker, gateway, 50 units"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the `chosen` subcommand's module is imported for its options.

    A Pi installed with the `unit` extra has no cryptography for `provision`,
    and importing every part would cost the unit ten megabytes of memory.
    """
    parser = _Parser(prog="balise", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"balise {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(module_name=module_name)
        if name == chosen:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line, if any (the first word that is not an option)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in SUBCOMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_chosen(argv)).parse_args(argv)
    module = importlib.import_module(args.module_name)
    try:
        return int(module.run(args))
    except USER_ERRORS as exc:
        print(f"balise {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
