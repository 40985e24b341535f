"""Drives for the benchmarks, one `Sample` per receiver epoch: a synthetic city drive, and the
real recordings of shared/nmea/ as the serial driver reads them.

The synthetic drive is generated, not recorded, and says so wherever it is shown. It is
seeded and deterministic: a motorcycle on a street grid (blocks of 80-220 m, rotated so
headings are not round numbers; avenues at 14-20 m/s, streets at 8-12 m/s, with a slowly
varying traffic factor), slowing to 5 m/s for each 90-degree turn (10 m radius, 2.5 m/s^2
lateral), stopping at a quarter of the junctions for 5-40 s, and parked "on scene" for ten
minutes in the middle. The receiver's errors are modelled as a u-blox-like 1 Hz receiver's:
a position error that wanders (first-order Gauss-Markov, 60 s correlation time, about
1.5 m per axis times HDOP, plus 0.3 m white noise), Doppler speed within 0.1 m/s, and a
course whose noise grows as the speed falls (frozen when nearly stopped, as receivers do).
Imports protocol/, firmware.core.fix and firmware.drivers.gps_nmea; nothing else of ours.
"""

from __future__ import annotations

import itertools
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware.core.fix import MODE_3D, Fix
from firmware.drivers.gps_nmea import NmeaAssembler
from protocol import predictor

ORIGIN = (34.2610, -6.5802)  # Kenitra: the first units' city
GRID_ROTATION_DEG = 17.0
GRID_LINES = 41
BLOCK_M = (80.0, 220.0)
AVENUE_EVERY = 5  # every fifth street line is an avenue
AVENUE_MPS = (14.0, 20.0)
STREET_MPS = (8.0, 12.0)
TURN_RADIUS_M = 10.0
LATERAL_ACCEL_MPS2 = 2.5
ACCEL_MPS2 = 2.0
BRAKE_MPS2 = 2.5
HARD_BRAKE_MPS2 = 6.0
TURN_ODDS = {"straight": 0.6, "left": 0.2, "right": 0.2}
STOP_ODDS = 0.25  # red lights, give-way: a quarter of the junctions
RED_LIGHT_S = (5.0, 40.0)
PARK_AT_S = 1500.0  # "on scene" after 25 minutes
PARK_FOR_S = 600.0
TRAFFIC_TAU_S = 30.0
TRAFFIC_SIGMA = 0.10
TRAFFIC_RANGE = (0.6, 1.1)
STEP_S = 0.1

GPS_ERROR_TAU_S = 60.0
GPS_ERROR_M_PER_HDOP = 1.5  # per axis
GPS_WHITE_M = 0.3
HDOP_RANGE = (0.7, 2.5)
HDOP_MEAN = 1.0
SPEED_NOISE_MPS = 0.1
COURSE_FROZEN_BELOW_MPS = 0.3

# The repository's sibling shared/nmea/; BALISE_NMEA_DIR names another (a git worktree
# elsewhere has no such sibling).
NMEA_DIR = Path(
    os.environ.get("BALISE_NMEA_DIR")
    or Path(__file__).resolve().parents[1].parent / "shared" / "nmea"
)


@dataclass
class Sample:
    """One epoch: the fix the receiver gives, and the true position where it is known."""

    tick_ms: int  # the unit's monotonic tick when the fix arrives
    fix: Any  # a firmware.core.fix.Fix: a plain class, untyped by design
    true_lat: float | None = None
    true_lon: float | None = None
    true_speed_mps: float | None = None


@dataclass
class DriveSummary:
    name: str
    kind: str  # "synthetic" or "recording"
    duration_s: float
    epochs: int
    distance_m: float  # along the true track (synthetic) or the fixes (recordings)
    moving_s: float
    stops: int
    max_speed_mps: float
    junctions: int = 0
    turns: int = 0

    def describe(self) -> str:
        streets = f"{self.junctions} junctions ({self.turns} turns), " if self.junctions else ""
        return (
            f"{self.name} ({self.kind}): {self.duration_s / 60:.1f} min, {self.epochs} epochs, "
            f"{self.distance_m / 1000:.2f} km, moving {self.moving_s / 60:.1f} min, "
            f"{streets}{self.stops} stops, top speed {self.max_speed_mps:.1f} m/s"
        )


# -- the synthetic city drive ---------------------------------------------------------------


def _unit(heading_deg: float) -> tuple[float, float]:
    rad = math.radians(heading_deg)
    return math.sin(rad), math.cos(rad)


def _heading(east: float, north: float) -> float:
    return math.degrees(math.atan2(east, north)) % 360


class _Piece:
    """A straight or a quarter-circle arc of the route, in metres east/north of ORIGIN."""

    def __init__(
        self,
        start: tuple[float, float],
        heading_deg: float,
        length_m: float,
        max_mps: float,
        turn: int = 0,
    ) -> None:
        self.start = start
        self.heading_deg = heading_deg
        self.length_m = length_m
        self.max_mps = max_mps
        self.turn = turn  # +1 right, -1 left, 0 straight
        self.s0 = 0.0  # distance along the route where the piece starts
        self.stop_s = 0.0  # dwell at its start (a stop line), 0 for none

    def at(self, u: float) -> tuple[float, float, float]:
        """(east, north, heading) `u` metres into the piece."""
        e0, n0 = self.start
        if not self.turn:
            de, dn = _unit(self.heading_deg)
            return e0 + de * u, n0 + dn * u, self.heading_deg
        r = TURN_RADIUS_M
        ce, cn = _unit(self.heading_deg + 90 * self.turn)
        centre = (e0 + r * ce, n0 + r * cn)
        heading = self.heading_deg + self.turn * math.degrees(u / r)
        pe, pn = _unit(heading - 90 * self.turn)
        return centre[0] + r * pe, centre[1] + r * pn, heading % 360


def _grid(rng: random.Random) -> tuple[list[float], list[float]]:
    def lines() -> list[float]:
        gaps = [rng.uniform(*BLOCK_M) for _ in range(GRID_LINES - 1)]
        positions = [0.0]
        for gap in gaps:
            positions.append(positions[-1] + gap)
        middle = positions[GRID_LINES // 2]
        return [p - middle for p in positions]

    return lines(), lines()


def _route_pieces(rng: random.Random, length_m: float) -> list[_Piece]:
    """A random walk over the grid's junctions, as straights and rounded corners."""
    xs, ys = _grid(rng)
    rot = math.radians(GRID_ROTATION_DEG)

    def enu(i: int, j: int) -> tuple[float, float]:
        x, y = xs[i], ys[j]
        return x * math.cos(rot) + y * math.sin(rot), -x * math.sin(rot) + y * math.cos(rot)

    def cruise(i: int, j: int, di: int) -> float:
        line = j if di else i  # moving along x stays on line j
        low, high = AVENUE_MPS if line % AVENUE_EVERY == 0 else STREET_MPS
        return rng.uniform(low, high)

    i = j = GRID_LINES // 2
    di, dj = 1, 0
    pieces: list[_Piece] = []
    total = 0.0
    entry = enu(i, j)  # where the next straight starts
    speed = cruise(i, j, di)
    turn_mps = math.sqrt(LATERAL_ACCEL_MPS2 * TURN_RADIUS_M)
    while total < length_m:
        ni, nj = i + di, j + dj
        node = enu(ni, nj)
        heading = _heading(node[0] - entry[0], node[1] - entry[1])
        choices = []
        for name, (ti, tj) in (("straight", (di, dj)), ("left", (-dj, di)), ("right", (dj, -di))):
            if 0 <= ni + ti < GRID_LINES and 0 <= nj + tj < GRID_LINES:
                choices.append((name, ti, tj))
        name, ti, tj = rng.choices(choices, [TURN_ODDS[c[0]] for c in choices])[0]
        de, dn = _unit(heading)
        straight_m = math.hypot(node[0] - entry[0], node[1] - entry[1]) - TURN_RADIUS_M
        pieces.append(_Piece(entry, heading, straight_m, speed))
        corner_start = (node[0] - TURN_RADIUS_M * de, node[1] - TURN_RADIUS_M * dn)
        next_speed = cruise(ni, nj, ti)
        if name == "straight":
            junction = _Piece(corner_start, heading, 2 * TURN_RADIUS_M, min(speed, next_speed))
        else:
            junction = _Piece(
                corner_start,
                heading,
                math.pi / 2 * TURN_RADIUS_M,
                turn_mps,
                turn=1 if name == "right" else -1,
            )
        if rng.random() < STOP_ODDS:
            junction.stop_s = rng.uniform(*RED_LIGHT_S)
        pieces.append(junction)
        end = junction.at(junction.length_m)
        entry = (end[0], end[1])
        total += straight_m + junction.length_m
        i, j, di, dj, speed = ni, nj, ti, tj, next_speed
    s = 0.0
    for piece in pieces:
        piece.s0 = s
        s += piece.length_m
    return pieces


class _Rider:
    """Drives the route: accelerates, brakes for turns and stop lines, waits, parks."""

    def __init__(self, pieces: list[_Piece], rng: random.Random) -> None:
        self.pieces = pieces
        self.rng = rng
        self.index = 0
        self.s = 0.0
        self.v = 0.0
        self.traffic = 1.0
        self.dwell_s = 0.0
        self.parked = False
        self.stops = 0

    def step(self, t_s: float, dt: float) -> None:
        if not self.parked and t_s >= PARK_AT_S:
            self._park_ahead()
        if self.dwell_s > 0:
            self.dwell_s -= dt
            return
        self.traffic += (1.0 - self.traffic) * dt / TRAFFIC_TAU_S + self.rng.gauss(
            0, TRAFFIC_SIGMA * math.sqrt(2 * dt / TRAFFIC_TAU_S)
        )
        self.traffic = min(max(self.traffic, TRAFFIC_RANGE[0]), TRAFFIC_RANGE[1])
        target = self._target_mps()
        if target > self.v:
            self.v = min(target, self.v + ACCEL_MPS2 * dt)
        else:
            self.v = max(target, self.v - HARD_BRAKE_MPS2 * dt, 0.0)
        stop = self._next_stop()
        self.s += self.v * dt
        if stop is not None and stop.s0 - self.s < 0.5:
            self.s = stop.s0
            self.v = 0.0
            self.dwell_s = stop.stop_s
            stop.stop_s = 0.0
            self.stops += 1
        while self.s >= self.pieces[self.index].s0 + self.pieces[self.index].length_m:
            self.index += 1

    def position(self) -> tuple[float, float, float]:
        piece = self.pieces[self.index]
        return piece.at(self.s - piece.s0)

    def _target_mps(self) -> float:
        piece = self.pieces[self.index]
        limit = piece.max_mps * (self.traffic if not piece.turn else 1.0)
        ahead = self.index + 1
        while ahead < len(self.pieces) and self.pieces[ahead].s0 - self.s < 250:
            nxt = self.pieces[ahead]
            gap = max(nxt.s0 - self.s, 0.0)
            v_at = 0.0 if nxt.stop_s else nxt.max_mps
            limit = min(limit, math.sqrt(v_at * v_at + 2 * BRAKE_MPS2 * gap))
            ahead += 1
        return limit

    def _next_stop(self) -> _Piece | None:
        ahead = self.index + 1
        while ahead < len(self.pieces) and self.pieces[ahead].s0 - self.s < 250:
            if self.pieces[ahead].stop_s:
                return self.pieces[ahead]
            ahead += 1
        return None

    def _park_ahead(self) -> None:
        """Stop at the first junction that can still be braked for, and stay on scene."""
        braking_m = self.v * self.v / (2 * BRAKE_MPS2) + 10
        for piece in self.pieces[self.index + 1 :]:
            if piece.s0 - self.s > braking_m and piece.length_m <= 2 * TURN_RADIUS_M + 1:
                piece.stop_s = PARK_FOR_S
                self.parked = True
                return


class _Receiver:
    """Turns the true track into what a 1 Hz receiver reports."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.error = [0.0, 0.0]
        self.hdop = HDOP_MEAN
        self.course = 0.0

    def fix(self, t_ms: int, east: float, north: float, heading: float, speed: float) -> Any:
        rng = self.rng
        decay = math.exp(-1.0 / GPS_ERROR_TAU_S)
        self.hdop += (HDOP_MEAN - self.hdop) * 0.05 + rng.gauss(0, 0.05)
        self.hdop = min(max(self.hdop, HDOP_RANGE[0]), HDOP_RANGE[1])
        sigma = GPS_ERROR_M_PER_HDOP * self.hdop
        for axis in (0, 1):
            self.error[axis] = self.error[axis] * decay + rng.gauss(
                0, sigma * math.sqrt(1 - decay * decay)
            )
        lat, lon = predictor.move(
            ORIGIN[0],
            ORIGIN[1],
            east + self.error[0] + rng.gauss(0, GPS_WHITE_M),
            north + self.error[1] + rng.gauss(0, GPS_WHITE_M),
        )
        measured = max(0.0, speed + rng.gauss(0, SPEED_NOISE_MPS))
        if measured >= COURSE_FROZEN_BELOW_MPS:
            spread = min(180.0, math.degrees(SPEED_NOISE_MPS / measured))
            self.course = (heading + rng.gauss(0, spread)) % 360
        return Fix(
            time_ms=t_ms,
            mode=MODE_3D,
            lat=round(lat, 7),
            lon=round(lon, 7),
            speed_mps=round(measured, 3),
            heading_deg=round(self.course, 2),
            alt_m=round(12.0 + rng.gauss(0, 1.0), 1),
            hdop=round(self.hdop, 1),
            sats=rng.randint(8, 12),
        )


def city_drive(
    duration_s: int = 3600, seed: int = 1, start_ms: int = 1732260000000
) -> tuple[list[Sample], DriveSummary]:
    """`duration_s` one-second epochs of the synthetic drive, and what it holds."""
    rng = random.Random(seed)
    pieces = _route_pieces(rng, AVENUE_MPS[1] * duration_s + 1000)
    rider = _Rider(pieces, random.Random(seed + 1))
    receiver = _Receiver(random.Random(seed + 2))
    samples = []
    steps = round(1 / STEP_S)
    distance = moving = top = 0.0
    for second in range(duration_s):
        east, north, heading = rider.position()
        true_lat, true_lon = predictor.move(ORIGIN[0], ORIGIN[1], east, north)
        fix = receiver.fix(start_ms + second * 1000, east, north, heading, rider.v)
        samples.append(Sample(second * 1000, fix, true_lat, true_lon, rider.v))
        before = rider.s
        for k in range(steps):
            rider.step(second + k * STEP_S, STEP_S)
        distance += rider.s - before
        moving += 1 if rider.v > predictor.STATIONARY_MPS else 0
        top = max(top, rider.v)
    summary = DriveSummary(
        name=f"city drive, seed {seed}",
        kind="synthetic",
        duration_s=float(duration_s),
        epochs=len(samples),
        distance_m=distance,
        moving_s=moving,
        stops=rider.stops,
        max_speed_mps=top,
        # The route alternates straights and junctions; the rider is on pieces[rider.index].
        junctions=len(pieces[1 : rider.index : 2]),
        turns=sum(1 for piece in pieces[1 : rider.index : 2] if piece.turn),
    )
    return samples, summary


# -- the real recordings ----------------------------------------------------------------------


def recording(path: Path) -> tuple[list[Sample], DriveSummary]:
    """A gpsd-test recording as the serial driver assembles it, one sample per epoch.

    Ticks follow the receiver's time where it moves forward, else one second per epoch
    (recordings repeat a time, step back, or have no date yet). No ground truth.
    """
    assembler = NmeaAssembler()
    fixes: list[Any] = []
    for line in path.read_text(encoding="ascii", errors="replace").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fix = assembler.feed(line)
        if fix is not None:
            fixes.append(fix)
    last = assembler.flush()
    if last is not None:
        fixes.append(last)
    samples: list[Sample] = []
    tick = 0
    previous_ms = None
    for fix in fixes:
        if samples:
            gap = None if previous_ms is None or fix.time_ms is None else fix.time_ms - previous_ms
            tick += gap if gap is not None and gap >= 0 else 1000
        if fix.time_ms is not None:
            previous_ms = fix.time_ms
        samples.append(Sample(tick, fix))
    placed = [s.fix for s in samples if s.fix.has_position()]
    distance = sum(
        predictor.distance_m(a.lat, a.lon, b.lat, b.lon) for a, b in itertools.pairwise(placed)
    )
    speeds = [f.speed_mps for f in placed if f.speed_mps is not None]
    summary = DriveSummary(
        name=path.name,
        kind="recording",
        duration_s=samples[-1].tick_ms / 1000 if samples else 0.0,
        epochs=len(samples),
        distance_m=distance,
        moving_s=math.fsum(
            (b.tick_ms - a.tick_ms) / 1000
            for a, b in itertools.pairwise(samples)
            if (a.fix.speed_mps or 0.0) >= predictor.STATIONARY_MPS
        ),
        stops=0,
        max_speed_mps=max(speeds, default=0.0),
    )
    return samples, summary


def recordings() -> list[Path]:
    return sorted(NMEA_DIR.glob("*.log"))
