"""The simulated city: streets, routes, vehicles, GPS error. Pure computation, no I/O."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from firmware.core.fix import MODE_3D, MODE_NO_FIX
from protocol.predictor import distance_m
from simulators.errors import SimulatorError
from simulators.gps_error import GpsReceiver
from simulators.world import KENITRA, PROFILES, StreetMap, Vehicle, Zone, as_geojson


def test_the_generated_city_is_around_kenitra_and_the_same_for_a_seed() -> None:
    a, b = StreetMap.generate(seed=3), StreetMap.generate(seed=3)
    assert [(n.lat, n.lon) for n in a.nodes] == [(n.lat, n.lon) for n in b.nodes]
    assert a.edges == b.edges
    assert StreetMap.generate(seed=4).edges != a.edges
    assert all(distance_m(*KENITRA, n.lat, n.lon) < 2500 * 1.5 for n in a.nodes)


def test_a_route_follows_streets_from_start_to_goal() -> None:
    streets = StreetMap.generate(seed=1)
    rng = random.Random(1)
    start, goal = streets.random_node(rng), streets.random_node(rng)
    route = streets.route(start, goal)
    assert route[0] == (start.lat, start.lon) and route[-1] == (goal.lat, goal.lon)
    at = {(n.lat, n.lon): n.id for n in streets.nodes}
    for here, there in itertools.pairwise(route):
        assert at[there] in streets.edges[at[here]], "every step is along a street"


@pytest.mark.parametrize("kind", ["motorcycle", "car"])
def test_a_vehicle_drives_to_a_place_within_its_speed_profile(kind: str) -> None:
    streets = StreetMap.generate(seed=2)
    vehicle = Vehicle(kind, streets, random.Random(7))
    goal = streets.nearest_node(34.2700, -6.5700)
    vehicle.drive_to(goal.lat, goal.lon)
    speeds = []
    for _ in range(3600):
        vehicle.step(1.0)
        speeds.append(vehicle.speed_mps)
        if vehicle.arrived:
            break
    assert vehicle.arrived and distance_m(vehicle.lat, vehicle.lon, goal.lat, goal.lon) < 1
    assert max(speeds) <= PROFILES[kind].top_mps and speeds.count(0.0) > 0  # it stopped somewhere


def test_the_receiver_adds_error_of_its_hdop_and_loses_the_fix_in_a_tunnel() -> None:
    streets = StreetMap.generate(seed=1)
    vehicle = Vehicle("car", streets, random.Random(1))
    receiver = GpsReceiver(random.Random(2), hdop=1.0, multipath_per_hour=0)
    errors = []
    for second in range(600):
        vehicle.step(1.0)
        fix = receiver.observe(vehicle, 1_732_260_000_000 + second * 1000)
        assert fix.mode == MODE_3D and fix.hdop is not None
        errors.append(distance_m(vehicle.lat, vehicle.lon, fix.lat, fix.lon))
    errors.sort()
    assert 1.0 < errors[len(errors) // 2] < 8.0  # median of a 4-m-UERE receiver at HDOP 1
    tunnel = Zone(vehicle.lat, vehicle.lon, 50, "tunnel")
    inside = GpsReceiver(random.Random(3), outages=[tunnel]).observe(vehicle, 1_732_260_000_000)
    assert inside.mode == MODE_NO_FIX and not inside.has_position()


def test_roads_from_geojson_and_bad_files_named(tmp_path: Path) -> None:
    good = tmp_path / "roads.geojson"
    good.write_text(json.dumps(as_geojson(StreetMap.generate(radius_m=400, seed=1))))
    streets = StreetMap.from_geojson(good)
    rng = random.Random(1)
    assert len(streets.route(streets.random_node(rng), streets.random_node(rng))) >= 1
    cases = {
        "missing.geojson": "cannot read",
        "bad.geojson": "not JSON",
        "list.geojson": "not a GeoJSON FeatureCollection",
        "points.geojson": "no LineString roads",
        "range.geojson": "feature 0: out of range",
    }
    (tmp_path / "bad.geojson").write_text("{oops")
    (tmp_path / "list.geojson").write_text("[]")
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}
    (tmp_path / "points.geojson").write_text(json.dumps({"features": [point]}))
    line = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 95], [0, 0]]}}
    (tmp_path / "range.geojson").write_text(json.dumps({"features": [line]}))
    for name, message in cases.items():
        with pytest.raises(SimulatorError, match=message):
            StreetMap.from_geojson(tmp_path / name)
    with pytest.raises(SimulatorError, match="vehicle kind 'tank'"):
        Vehicle("tank", streets, rng)


def test_a_gpx_track_is_a_street_to_drive_along(tmp_path: Path) -> None:
    import gpxpy.gpx

    gpx = gpxpy.gpx.GPX()
    track = gpxpy.gpx.GPXTrack()
    segment = gpxpy.gpx.GPXTrackSegment()
    points = [(34.2610 + i * 0.001, -6.5802 + (i % 2) * 0.0005) for i in range(6)]
    segment.points = [gpxpy.gpx.GPXTrackPoint(lat, lon) for lat, lon in points]
    track.segments.append(segment)
    gpx.tracks.append(track)
    path = tmp_path / "patrol.gpx"
    path.write_text(gpx.to_xml())
    streets = StreetMap.from_gpx(path)
    route = streets.route(streets.nearest_node(*points[0]), streets.nearest_node(*points[-1]))
    assert [(round(a, 6), round(b, 6)) for a, b in route] == [
        (round(a, 6), round(b, 6)) for a, b in points
    ]
    (tmp_path / "bad.gpx").write_text("<gpx><trk>")
    with pytest.raises(SimulatorError, match=r"bad\.gpx: not a GPX file"):
        StreetMap.from_gpx(tmp_path / "bad.gpx")
    empty = gpxpy.gpx.GPX()
    (tmp_path / "empty.gpx").write_text(empty.to_xml())
    with pytest.raises(SimulatorError, match="no track or route with two points"):
        StreetMap.from_gpx(tmp_path / "empty.gpx")
