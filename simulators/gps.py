"""`balise sim gps`: a simulated receiver on a pseudo-terminal, or a log for gpsfake.

    balise sim gps --pty [--kind car] [--center LAT,LON] [--geojson ROADS] [--seed N]
    balise sim gps --log drive.nmea --duration 600

`--pty` opens a pseudo-terminal, prints its path on stdout, and writes NMEA to
it in real time, once a second, as a serial receiver does: point a unit at it
with `balise unit --gps serial:///dev/pts/N?baud=9600`. `--log` writes the
sentences of `--duration` seconds at once, for `gpsfake` to replay into gpsd.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

from simulators.errors import SimulatorError
from simulators.gps_error import GpsReceiver
from simulators.nmea import sentences
from simulators.world import KENITRA, StreetMap, Vehicle


def center_arg(text: str) -> tuple[float, float]:
    """LAT,LON for argparse (a city's centre)."""
    try:
        lat, lon = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LAT,LON") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise argparse.ArgumentTypeError(f"{text!r}: out of range")
    return lat, lon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--pty", action="store_true", help="NMEA in real time on a pseudo-terminal")
    out.add_argument("--log", type=Path, metavar="FILE", help="write an NMEA log for gpsfake")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds (default: forever; a log: 600)"
    )
    parser.add_argument("--kind", choices=("motorcycle", "car"), default="motorcycle")
    parser.add_argument("--center", type=center_arg, default=KENITRA, metavar="LAT,LON")
    roads = parser.add_mutually_exclusive_group()
    roads.add_argument("--geojson", type=Path, help="roads to drive instead of a generated city")
    roads.add_argument("--gpx", type=Path, help="a GPX track to drive along")
    parser.add_argument("--seed", type=int, default=0)


def drive(args: argparse.Namespace) -> tuple[Vehicle, GpsReceiver]:
    if args.geojson is not None:
        streets = StreetMap.from_geojson(args.geojson)
    elif args.gpx is not None:
        streets = StreetMap.from_gpx(args.gpx)
    else:
        streets = StreetMap.generate(args.center, seed=args.seed)
    rng = random.Random(args.seed)
    vehicle = Vehicle(args.kind, streets, rng)
    vehicle.patrol()
    return vehicle, GpsReceiver(rng)


def run(args: argparse.Namespace) -> int:
    vehicle, receiver = drive(args)
    if args.log is not None:
        seconds = int(args.duration or 600)
        start_ms = int(time.time()) * 1000
        try:
            with args.log.open("w", newline="") as log:
                for second in range(seconds):
                    vehicle.step(1.0)
                    log.writelines(sentences(receiver.observe(vehicle, start_ms + second * 1000)))
        except OSError as exc:
            raise SimulatorError(f"{args.log}: cannot write: {exc.strerror or exc}") from exc
        print(f"{args.log}: {seconds} s of NMEA, {vehicle.odometer_m:.0f} m driven")
        return 0
    master, slave = os.openpty()
    print(os.ttyname(slave), flush=True)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    next_second = time.monotonic()
    try:
        while deadline is None or time.monotonic() < deadline:
            vehicle.step(1.0)
            fix = receiver.observe(vehicle, int(time.time() * 1000))
            os.write(master, "".join(sentences(fix)).encode("ascii"))
            next_second += 1.0
            time.sleep(max(0.0, next_second - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        os.close(master)
        os.close(slave)
    print("sim gps: stopped", file=sys.stderr)
    return 0
