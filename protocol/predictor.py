"""The motion predictor that units and gateway share.

The gateway draws a unit where this predictor says it is now, extrapolating
from the unit's last report; the unit runs the same predictor and reports
whenever the extrapolation would be off by more than its threshold. Because
both sides run this one function, the command room's error is bounded by the
unit's threshold (plus one fix interval).

Constant velocity along the reported course, for at most
MAX_EXTRAPOLATION_S: a unit that cannot report (tunnel, dead zone) is not
drawn driving on forever. A report made while braking carries its
deceleration (`accel_mps2` < 0), and is drawn slowing down to a stop there,
not overshooting it: a vehicle braking at a junction mostly stops or turns.
A positive acceleration is not extrapolated: predicting it cost more reports
than it saved on the benchmark's drives (docs/benchmarks.md), since
accelerations end soon and at no speed that can be foreseen. Distances use
the equirectangular approximation, accurate to well under 0.1% over the few
kilometres involved and numerically sound on MicroPython's single-precision
floats. Imports nothing of ours.
"""

import math

EARTH_RADIUS_M = 6371008.8
# Below this speed GPS noise dominates the course: treat the unit as stopped.
STATIONARY_MPS = 0.5
MAX_EXTRAPOLATION_S = 30.0


def offset_m(lat1, lon1, lat2, lon2):
    """(east, north) metres from point 1 to point 2."""
    mean_lat = math.radians((lat1 + lat2) / 2)
    east = math.radians(lon2 - lon1) * EARTH_RADIUS_M * math.cos(mean_lat)
    north = math.radians(lat2 - lat1) * EARTH_RADIUS_M
    return east, north


def distance_m(lat1, lon1, lat2, lon2):
    east, north = offset_m(lat1, lon1, lat2, lon2)
    return math.sqrt(east * east + north * north)


def move(lat, lon, east_m, north_m):
    """The point `east_m`, `north_m` metres from (lat, lon)."""
    new_lat = lat + math.degrees(north_m / EARTH_RADIUS_M)
    cos_lat = math.cos(math.radians((lat + new_lat) / 2))
    new_lon = lon + math.degrees(east_m / (EARTH_RADIUS_M * max(cos_lat, 1e-6)))
    return new_lat, new_lon


def travelled_m(speed_mps, elapsed_s, accel_mps2=None):
    """Metres along the course after `elapsed_s`: constant speed, or braking to a stop."""
    elapsed_s = min(elapsed_s, MAX_EXTRAPOLATION_S)
    if accel_mps2 is None or accel_mps2 >= 0:
        return speed_mps * elapsed_s
    braking_s = min(elapsed_s, speed_mps / -accel_mps2)
    return speed_mps * braking_s + 0.5 * accel_mps2 * braking_s * braking_s


def predict(lat, lon, speed_mps, heading_deg, elapsed_s, accel_mps2=None):
    """Where a unit last seen at (lat, lon) is after `elapsed_s` seconds."""
    if not speed_mps or speed_mps < STATIONARY_MPS or heading_deg is None or elapsed_s <= 0:
        return lat, lon
    travelled = travelled_m(speed_mps, elapsed_s, accel_mps2)
    course = math.radians(heading_deg)
    return move(lat, lon, travelled * math.sin(course), travelled * math.cos(course))


def predict_report(position, t_ms):
    """Where the unit of a `pos` report (protocol.messages.Position) is at time t_ms."""
    elapsed_s = (t_ms - position.t_ms) / 1000
    return predict(
        position.lat,
        position.lon,
        position.speed_mps,
        position.heading_deg,
        elapsed_s,
        position.accel_mps2,
    )
