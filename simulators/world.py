"""Streets and vehicles that drive them: where simulated units are.

`StreetMap.generate` lays out a city around a centre (default Kénitra): a grid
of streets about 180 m apart, bent a little so no two blocks are alike, with
a few long avenues across it; or `StreetMap.from_geojson` reads real roads
(LineString/MultiLineString features). Routes are shortest paths along the
streets (Dijkstra). A `Vehicle` drives a route with a motorcycle's or a car's
speed profile: it accelerates, cruises, slows for turns and stops at some
junctions, as city traffic does. Deterministic for a given seed.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.predictor import distance_m, move, offset_m
from simulators.errors import SimulatorError

KENITRA = (34.2610, -6.5802)
BLOCK_M = 180.0


@dataclass(frozen=True)
class Profile:
    cruise_mps: float  # typical speed between junctions
    top_mps: float
    accel_mps2: float
    brake_mps2: float
    turn_mps: float  # speed through a turn
    stop_chance: float  # chance of a stop (light, give way) at a junction


PROFILES = {
    "motorcycle": Profile(13.0, 19.0, 2.5, 3.5, 5.0, 0.25),
    "car": Profile(11.0, 16.0, 1.8, 3.0, 4.0, 0.35),
}


@dataclass(frozen=True)
class Node:
    id: int
    lat: float
    lon: float


@dataclass
class StreetMap:
    nodes: list[Node]
    edges: dict[int, dict[int, float]]  # node -> neighbour -> metres

    @classmethod
    def generate(
        cls, center: tuple[float, float] = KENITRA, radius_m: float = 2500.0, seed: int = 0
    ) -> StreetMap:
        if radius_m < BLOCK_M:
            raise SimulatorError(f"radius {radius_m} m: at least one block ({BLOCK_M:.0f} m)")
        rng = random.Random(seed)
        half = int(radius_m // BLOCK_M)
        index: dict[tuple[int, int], int] = {}
        nodes: list[Node] = []
        for i in range(-half, half + 1):
            for j in range(-half, half + 1):
                east = j * BLOCK_M + rng.uniform(-25, 25)
                north = i * BLOCK_M + rng.uniform(-25, 25)
                lat, lon = move(center[0], center[1], east, north)
                index[(i, j)] = len(nodes)
                nodes.append(Node(len(nodes), lat, lon))
        streets = cls(nodes, {n.id: {} for n in nodes})
        for (i, j), a in index.items():
            for di, dj in ((0, 1), (1, 0)):
                b = index.get((i + di, j + dj))
                if b is not None and rng.random() > 0.04:  # a few blocks are closed
                    streets._link(a, b)
        for _ in range(max(2, half // 3)):  # avenues cutting across the grid
            i, j = rng.randrange(-half, half), rng.randrange(-half, half)
            while (i + 1, j + 1) in index:
                streets._link(index[(i, j)], index[(i + 1, j + 1)])
                i, j = i + 1, j + 1
        return streets

    @classmethod
    def from_geojson(cls, path: str | Path) -> StreetMap:
        """Roads from a GeoJSON file: every LineString/MultiLineString is a street."""
        try:
            document = json.loads(Path(path).read_text())
        except OSError as exc:
            raise SimulatorError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise SimulatorError(f"{path}: not JSON: {exc}") from exc
        features = document.get("features") if isinstance(document, dict) else None
        if not isinstance(features, list):
            raise SimulatorError(f"{path}: not a GeoJSON FeatureCollection")
        lines = []
        for number, feature in enumerate(features):
            geometry = (feature or {}).get("geometry") or {}
            kind, coords = geometry.get("type"), geometry.get("coordinates")
            parts: list[Any] = []
            if kind == "LineString":
                parts = [coords]
            elif kind == "MultiLineString" and isinstance(coords, list):
                parts = coords
            for line in parts:
                if not isinstance(line, list):
                    raise SimulatorError(f"{path}: feature {number}: a line must be a list")
                lines.append((number, line))
        if not lines:
            raise SimulatorError(f"{path}: no LineString roads in it")
        return cls._from_lines([line for _, line in lines], str(path), [n for n, _ in lines])

    @classmethod
    def _from_lines(
        cls, lines: list[Any], where: str, numbers: list[int] | None = None
    ) -> StreetMap:
        """Streets from lines of [lon, lat] points; points within 0.1 m are one junction."""
        streets = cls([], {})
        at: dict[tuple[float, float], int] = {}
        for index, line in enumerate(lines):
            feature = f"feature {numbers[index] if numbers else index}"
            previous = None
            for point in line:
                if not (isinstance(point, list) and len(point) >= 2):
                    raise SimulatorError(f"{where}: {feature}: bad coordinate {point!r}")
                lon, lat = float(point[0]), float(point[1])
                if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                    raise SimulatorError(f"{where}: {feature}: out of range {point!r}")
                key = (round(lat, 6), round(lon, 6))
                if key not in at:
                    at[key] = len(streets.nodes)
                    streets.nodes.append(Node(len(streets.nodes), lat, lon))
                    streets.edges[at[key]] = {}
                if previous is not None and previous != at[key]:
                    streets._link(previous, at[key])
                previous = at[key]
        if not any(streets.edges.values()):
            raise SimulatorError(f"{where}: no street with two distinct points")
        return streets

    @classmethod
    def from_gpx(cls, path: str | Path) -> StreetMap:
        """The tracks (or routes) of a GPX file as streets: a vehicle drives along them."""
        import gpxpy
        import gpxpy.gpx

        try:
            with Path(path).open() as stream:
                gpx = gpxpy.parse(stream)
        except OSError as exc:
            raise SimulatorError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except gpxpy.gpx.GPXException as exc:
            raise SimulatorError(f"{path}: not a GPX file: {exc}") from exc
        lines = [
            [[p.longitude, p.latitude] for p in segment.points]
            for track in gpx.tracks
            for segment in track.segments
        ] + [[[p.longitude, p.latitude] for p in route.points] for route in gpx.routes]
        lines = [line for line in lines if len(line) >= 2]
        if not lines:
            raise SimulatorError(f"{path}: no track or route with two points or more")
        return cls._from_lines(lines, str(path))

    def _link(self, a: int, b: int) -> None:
        metres = distance_m(
            self.nodes[a].lat, self.nodes[a].lon, self.nodes[b].lat, self.nodes[b].lon
        )
        self.edges[a][b] = self.edges[b][a] = metres

    def random_node(self, rng: random.Random) -> Node:
        connected = [n for n in self.nodes if self.edges[n.id]]
        return rng.choice(connected)

    def nearest_node(self, lat: float, lon: float) -> Node:
        return min(
            (n for n in self.nodes if self.edges[n.id]),
            key=lambda n: distance_m(lat, lon, n.lat, n.lon),
        )

    def route(self, a: Node, b: Node) -> list[tuple[float, float]]:
        """The shortest path from a to b along the streets, as (lat, lon) points."""
        best = {a.id: 0.0}
        came: dict[int, int] = {}
        queue = [(0.0, a.id)]
        while queue:
            cost, here = heapq.heappop(queue)
            if here == b.id:
                break
            if cost > best[here]:
                continue
            for there, metres in self.edges[here].items():
                if cost + metres < best.get(there, math.inf):
                    best[there] = cost + metres
                    came[there] = here
                    heapq.heappush(queue, (cost + metres, there))
        if b.id not in best:
            raise SimulatorError(f"no street leads from node {a.id} to node {b.id}")
        path = [b.id]
        while path[-1] != a.id:
            path.append(came[path[-1]])
        return [(self.nodes[n].lat, self.nodes[n].lon) for n in reversed(path)]


@dataclass
class Zone:
    """A circle on the map: a tunnel (no GPS) or a dead zone (no link)."""

    lat: float
    lon: float
    radius_m: float
    name: str = ""

    def contains(self, lat: float, lon: float) -> bool:
        return distance_m(self.lat, self.lon, lat, lon) <= self.radius_m


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    east, north = offset_m(a[0], a[1], b[0], b[1])
    return math.degrees(math.atan2(east, north)) % 360


@dataclass
class Vehicle:
    kind: str
    streets: StreetMap
    rng: random.Random
    start: Node | None = None
    lat: float = 0.0
    lon: float = 0.0
    speed_mps: float = 0.0
    heading_deg: float = 0.0
    arrived: bool = True
    odometer_m: float = 0.0
    _route: list[tuple[float, float]] = field(default_factory=list)
    _patrolling: bool = False
    _stopped_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in PROFILES:
            raise SimulatorError(f"vehicle kind {self.kind!r}: one of {', '.join(PROFILES)}")
        self.profile = PROFILES[self.kind]
        here = self.start or self.streets.random_node(self.rng)
        self.lat, self.lon = here.lat, here.lon

    def drive_to(self, lat: float, lon: float) -> None:
        self._patrolling = False
        self._set_route(self.streets.nearest_node(lat, lon))

    def park(self) -> None:
        """Stop where it is and stay (a unit on a stand, or a tester's bench)."""
        self._patrolling = False
        self._route = []
        self.arrived = True

    def patrol(self) -> None:
        self._patrolling = True
        self._set_route(self.streets.random_node(self.rng))

    def _set_route(self, goal: Node) -> None:
        here = self.streets.nearest_node(self.lat, self.lon)
        self._route = self.streets.route(here, goal)  # from `here`, which may be behind us
        if (here.lat, here.lon) == (self.lat, self.lon):
            self._route.pop(0)
        self.arrived = not self._route

    def step(self, dt_s: float) -> None:
        """Advance dt_s seconds along the route."""
        if self._stopped_s > 0:
            self._stopped_s -= dt_s
            self.speed_mps = 0.0
            return
        if not self._route:
            self.speed_mps = max(0.0, self.speed_mps - self.profile.brake_mps2 * dt_s)
            self.arrived = True
            if self._patrolling:
                self._stopped_s = self.rng.uniform(5, 40)  # a look around, then on
                self.patrol()
            return
        target = self._route[0]
        remaining = distance_m(self.lat, self.lon, *target)
        # Slow for the junction ahead: the speed from which braking stops in time for a turn.
        approach = math.sqrt(self.profile.turn_mps**2 + 2 * self.profile.brake_mps2 * remaining)
        cruise = self.profile.cruise_mps * self._mood
        wanted = min(cruise, approach, self.profile.top_mps)
        if self.speed_mps < wanted:
            self.speed_mps = min(wanted, self.speed_mps + self.profile.accel_mps2 * dt_s)
        else:
            self.speed_mps = max(wanted, self.speed_mps - self.profile.brake_mps2 * dt_s)
        travel = max(self.speed_mps, 0.5) * dt_s
        self.odometer_m += travel
        while travel > 0 and self._route:
            target = self._route[0]
            remaining = distance_m(self.lat, self.lon, *target)
            self.heading_deg = (
                _bearing((self.lat, self.lon), target) if remaining > 0.1 else self.heading_deg
            )
            if travel < remaining:
                east, north = offset_m(self.lat, self.lon, *target)
                fraction = travel / remaining
                self.lat, self.lon = move(self.lat, self.lon, east * fraction, north * fraction)
                travel = 0
            else:
                self.lat, self.lon = target
                travel -= remaining
                self._route.pop(0)
                if self._route and self.rng.random() < self.profile.stop_chance:
                    self._stopped_s = self.rng.uniform(3, 25)  # a red light
                    self.speed_mps = 0.0
                    travel = 0
        self.arrived = not self._route and not self._patrolling

    @property
    def _mood(self) -> float:
        """Some drivers are quicker than others; one draw per vehicle."""
        mood: float | None = self.__dict__.get("_mood_value")
        if mood is None:
            mood = self.__dict__["_mood_value"] = self.rng.uniform(0.85, 1.15)
        return mood


def route_length_m(points: Sequence[tuple[float, float]]) -> float:
    return sum(distance_m(*a, *b) for a, b in itertools.pairwise(points))


def as_geojson(streets: StreetMap) -> dict[str, Any]:
    """The street map as GeoJSON (for pictures and for from_geojson)."""
    lines = [
        [[streets.nodes[a].lon, streets.nodes[a].lat], [streets.nodes[b].lon, streets.nodes[b].lat]]
        for a, neighbours in streets.edges.items()
        for b in neighbours
        if a < b
    ]
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "MultiLineString", "coordinates": lines}}
        ],
    }
