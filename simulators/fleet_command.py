"""`balise sim fleet --deployment DIR --units N [--processes K]`: a simulated fleet until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from simulators.errors import SimulatorError
from simulators.fleet import FleetOptions, progress_line, run_until_signal
from simulators.fleet_processes import (
    FleetProcesses,
    WorkerFailed,
    default_processes,
    run_worker,
)
from simulators.gps import center_arg
from simulators.world import KENITRA, Zone


def zone(text: str) -> Zone:
    try:
        lat, lon, radius = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LAT,LON,RADIUS_M") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: out of range")
    return Zone(lat, lon, radius)


def seconds_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MIN_S,MAX_S") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= MIN_S <= MAX_S")
    return low, high


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deployment", required=True, type=Path, help="written by balise provision"
    )
    parser.add_argument("--units", required=True, type=int, help="how many of its units to run")
    parser.add_argument(
        "--first-unit",
        type=int,
        default=0,
        metavar="I",
        help="start at the deployment's I-th unit (sorted by id, from 0): share a fleet out",
    )
    parser.add_argument(
        "--processes",
        type=int,
        metavar="K",
        help="split the units over K processes (default: 1 up to 1,000 units, else one per core)",
    )
    parser.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--center", type=center_arg, default=KENITRA, metavar="LAT,LON", help="the city's centre"
    )
    parser.add_argument("--sos-per-hour", type=float, default=0.0, help="per unit")
    parser.add_argument("--dead-zone", type=zone, action="append", default=[], metavar="LAT,LON,R")
    parser.add_argument("--tunnel", type=zone, action="append", default=[], metavar="LAT,LON,R")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each publish")
    parser.add_argument(
        "--connect-spread", type=float, default=5.0, metavar="S", help="connect over S seconds"
    )
    parser.add_argument(
        "--on-scene",
        type=seconds_range,
        default=(60.0, 180.0),
        metavar="MIN,MAX",
        help="seconds a unit stays at an incident",
    )
    # A share of a multi-process fleet: reports on stdout, stops when stdin closes.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.units < 1:
        raise SimulatorError("--units: at least 1")
    if args.connect_spread < 0:
        raise SimulatorError("--connect-spread: at least 0")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    options = FleetOptions(
        deployment=args.deployment,
        units=args.units,
        seed=args.seed,
        center=args.center,
        sos_per_hour=args.sos_per_hour,
        on_scene_s=args.on_scene,
        dead_zones=args.dead_zone,
        tunnels=args.tunnel,
        latency_s=args.latency,
        connect_spread_s=args.connect_spread,
        first_unit=args.first_unit,
    )
    if args.worker:
        asyncio.run(run_worker(options, args.duration))
        return 0
    processes = default_processes(args.units) if args.processes is None else args.processes
    if processes > 1:
        return asyncio.run(_main_processes(options, processes, args.duration))
    if processes < 1:
        raise SimulatorError(f"--processes {processes}: at least 1")
    return asyncio.run(_main(options, args.duration))


async def _main(options: FleetOptions, duration: float | None) -> int:
    fleet = await run_until_signal(options, duration)
    sent = fleet.stats.published
    print(f"\nfleet: {len(fleet.units)} units, {sent} messages sent", file=sys.stderr)
    return 0


async def _main_processes(options: FleetOptions, processes: int, duration: float | None) -> int:
    loop = asyncio.get_running_loop()
    fleet = FleetProcesses(options, processes)
    runner = asyncio.create_task(fleet.run(duration, progress_line(processes=processes)))

    def stop() -> None:
        fleet.stopping = True  # before Ctrl-C's workers exit: their end is no failure
        runner.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    except WorkerFailed as exc:
        print(f"\nbalise sim fleet: {exc}; the other workers were stopped", file=sys.stderr)
        return 1
    sent = fleet.stats.published
    print(
        f"\nfleet: {fleet.size} units in {processes} processes, {sent} messages sent",
        file=sys.stderr,
    )
    return 0
