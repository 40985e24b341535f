"""The shared motion predictor (portable: also runs under MicroPython)."""

from protocol import predictor
from protocol.messages import Position
from tests.protocol.portable import raises

MICROPYTHON = True

KENITRA = (34.2610, -6.5802)


def close(a, b, tolerance):
    return abs(a - b) <= tolerance


def test_distance_of_known_offsets():
    lat, lon = KENITRA
    # One thousandth of a degree of latitude is about 111.2 m everywhere.
    assert close(predictor.distance_m(lat, lon, lat + 0.001, lon), 111.2, 0.1)
    # Of longitude, shrunk by cos(latitude).
    assert close(predictor.distance_m(lat, lon, lat, lon + 0.001), 91.97, 0.1)
    assert predictor.distance_m(lat, lon, lat, lon) == 0


def test_move_then_measure_is_consistent():
    lat, lon = KENITRA
    new_lat, new_lon = predictor.move(lat, lon, 300.0, -400.0)
    east, north = predictor.offset_m(lat, lon, new_lat, new_lon)
    assert close(east, 300.0, 0.05) and close(north, -400.0, 0.05)


def test_constant_velocity_along_the_course():
    lat, lon = KENITRA
    # 10 m/s due east for 12 s: 120 m east.
    new_lat, new_lon = predictor.predict(lat, lon, 10.0, 90.0, 12.0)
    east, north = predictor.offset_m(lat, lon, new_lat, new_lon)
    assert close(east, 120.0, 0.05) and close(north, 0.0, 0.05)


def test_no_extrapolation_when_stopped_or_without_course():
    lat, lon = KENITRA
    assert predictor.predict(lat, lon, 0.3, 90.0, 60.0) == (lat, lon)
    assert predictor.predict(lat, lon, None, 90.0, 60.0) == (lat, lon)
    assert predictor.predict(lat, lon, 10.0, None, 60.0) == (lat, lon)
    assert predictor.predict(lat, lon, 10.0, 90.0, -5.0) == (lat, lon)


def test_extrapolation_stops_after_the_horizon():
    lat, lon = KENITRA
    far = predictor.predict(lat, lon, 10.0, 0.0, 10 * predictor.MAX_EXTRAPOLATION_S)
    limit = predictor.predict(lat, lon, 10.0, 0.0, predictor.MAX_EXTRAPOLATION_S)
    assert far == limit
    assert close(
        predictor.distance_m(lat, lon, far[0], far[1]), 10.0 * predictor.MAX_EXTRAPOLATION_S, 0.5
    )


def report(**changes):
    values = {
        "unit": "U",
        "seq": 1,
        "t_ms": 1000,
        "lat": KENITRA[0],
        "lon": KENITRA[1],
        "speed_mps": 5.0,
        "heading_deg": 0.0,
        "fix": 3,
    }
    values.update(changes)
    return Position(**values)


def test_predict_report_uses_the_report_time():
    moving = report()
    lat, lon = predictor.predict_report(moving, 5000)
    assert close(predictor.distance_m(KENITRA[0], KENITRA[1], lat, lon), 20.0, 0.05)
    raises(TypeError, predictor.predict_report, moving, None)


def test_a_braking_report_is_drawn_stopping_where_it_would_stop():
    lat, lon = KENITRA
    # 12 m/s north, braking at 3 m/s^2: stops after 4 s and 24 m, and stays there.
    for elapsed_s, expected_m in ((2.0, 18.0), (4.0, 24.0), (20.0, 24.0)):
        new_lat, new_lon = predictor.predict(lat, lon, 12.0, 0.0, elapsed_s, -3.0)
        east, north = predictor.offset_m(lat, lon, new_lat, new_lon)
        assert close(north, expected_m, 0.05) and close(east, 0.0, 0.05), elapsed_s
    assert predictor.travelled_m(12.0, 100.0, -3.0) == predictor.travelled_m(12.0, 4.0, -3.0)


def test_acceleration_is_not_extrapolated():
    # Measured on the benchmark's drives: predicting speeding up cost more reports.
    lat, lon = KENITRA
    assert predictor.predict(lat, lon, 10.0, 90.0, 12.0, 2.0) == predictor.predict(
        lat, lon, 10.0, 90.0, 12.0
    )
    assert predictor.predict(lat, lon, 0.0, 90.0, 12.0, 2.0) == (lat, lon)


def test_predict_report_brakes_with_the_report():
    braking = report(speed_mps=10.0, heading_deg=90.0, accel_mps2=-2.5)
    lat, lon = predictor.predict_report(braking, 31000)
    assert close(predictor.distance_m(KENITRA[0], KENITRA[1], lat, lon), 20.0, 0.05)
