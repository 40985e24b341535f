"""`balise sim unit --deployment DIR --unit ID`: one simulated unit in the terminal.

The terminal view (simulators/unit_view.py, textual) is imported only when the
command runs, so `balise sim --help` does not load it.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from simulators.fleet import FleetOptions

GPS_MODES = {
    "drive": "the unit patrols the generated streets of Kénitra",
    "park": "the unit stands still at a street corner",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deployment", required=True, type=Path, help="written by balise provision"
    )
    parser.add_argument("--unit", required=True, metavar="ID", help="one of its units: KEN-M01")
    parser.add_argument(
        "--gps",
        choices=sorted(GPS_MODES),
        default="drive",
        help="; ".join(f"{mode}: {what}" for mode, what in GPS_MODES.items()),
    )
    parser.add_argument("--seed", type=int, default=0, help="where it starts and drives")


def run(args: argparse.Namespace) -> int:
    from simulators.unit_view import run_view

    options = FleetOptions(
        deployment=args.deployment,
        units=1,
        seed=args.seed,
        unit_ids=[args.unit],
        rider=False,
        connect_spread_s=0,
    )
    asyncio.run(run_view(options, parked=args.gps == "park"))
    return 0
