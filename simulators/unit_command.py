"""`balise sim unit --deployment DIR --unit ID`: one simulated unit in the terminal.

The terminal view (simulators/unit_view.py, textual) is imported only when the
command runs, so `balise sim --help` does not load it.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from firmware.drivers.gps import URL_FORMS, gps_source_from_url
from firmware.errors import ConfigError
from simulators.fleet import FleetOptions

GPS_MODES = {
    "drive": "the simulated unit patrols the generated streets of Kénitra",
    "park": "it stands still at a street corner",
}


def gps_choice(text: str) -> str:
    """A GPS mode, or a receiver's URL (checked here, opened when the unit starts)."""
    if text in GPS_MODES:
        return text
    try:
        gps_source_from_url(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; or one of {', '.join(GPS_MODES)}") from None
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deployment", required=True, type=Path, help="written by balise provision"
    )
    parser.add_argument("--unit", required=True, metavar="ID", help="one of its units: KEN-M01")
    modes = "; ".join(f"{mode}: {what}" for mode, what in GPS_MODES.items())
    parser.add_argument(
        "--gps",
        type=gps_choice,
        default="drive",
        metavar="MODE|URL",
        help=f"{modes}; or a receiver: {URL_FORMS} (balise sim gps --pty makes one)",
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
    asyncio.run(run_view(options, args.gps))
    return 0
