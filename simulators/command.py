"""`balise sim ...`: the simulators' commands, each imported only when chosen."""

from __future__ import annotations

import argparse
import importlib

# name -> (module with add_arguments/run, one-line help)
SIM_COMMANDS: dict[str, tuple[str, str]] = {
    "fleet": ("simulators.fleet_command", "run N simulated units against a deployment's broker"),
    "gps": ("simulators.gps", "a simulated GPS receiver: NMEA on a pseudo-terminal or a log"),
    "scenario": ("simulators.scenario", "run a scenario file and check what the API shows"),
    "unit": (
        "simulators.unit_command",
        "one simulated unit in the terminal: press its buttons, watch its LEDs and buzzer",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="sim_command", metavar="SIMULATOR", required=True)
    for name, (module_name, help_text) in SIM_COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(sim_module=module_name)
        importlib.import_module(module_name).add_arguments(sub)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args.sim_module).run(args))
