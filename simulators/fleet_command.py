"""`balise sim fleet --deployment DIR --units N`: a simulated fleet until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from simulators.errors import SimulatorError
from simulators.fleet import FleetOptions, run_until_signal
from simulators.world import Zone


def zone(text: str) -> Zone:
    try:
        lat, lon, radius = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LAT,LON,RADIUS_M") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: out of range")
    return Zone(lat, lon, radius)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deployment", required=True, type=Path, help="written by balise provision"
    )
    parser.add_argument("--units", required=True, type=int, help="how many of its units to run")
    parser.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sos-per-hour", type=float, default=0.0, help="per unit")
    parser.add_argument("--dead-zone", type=zone, action="append", default=[], metavar="LAT,LON,R")
    parser.add_argument("--tunnel", type=zone, action="append", default=[], metavar="LAT,LON,R")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each publish")


def run(args: argparse.Namespace) -> int:
    if args.units < 1:
        raise SimulatorError("--units: at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    options = FleetOptions(
        deployment=args.deployment,
        units=args.units,
        seed=args.seed,
        sos_per_hour=args.sos_per_hour,
        dead_zones=args.dead_zone,
        tunnels=args.tunnel,
        latency_s=args.latency,
    )
    return asyncio.run(_main(options, args.duration))


async def _main(options: FleetOptions, duration: float | None) -> int:
    fleet = await run_until_signal(options, duration)
    sent = fleet.stats.published
    print(f"\nfleet: {len(fleet.units)} units, {sent} messages sent", file=sys.stderr)
    return 0
