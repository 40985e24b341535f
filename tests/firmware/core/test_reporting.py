"""The reporting policy (portable: also runs under MicroPython)."""

from firmware.core.fix import MODE_2D, MODE_3D, MODE_NO_FIX, Fix
from firmware.core.reporting import FIX_LOST, FIX_REGAINED, HEARTBEAT, MOVED, ReportingPolicy
from protocol import predictor
from protocol.messages import Position

MICROPYTHON = True

START = (34.2610, -6.5802)


def fix_at(east_m, north_m, speed=0.0, heading=0.0, mode=MODE_3D, hdop=1.0):
    lat, lon = predictor.move(START[0], START[1], east_m, north_m)
    return Fix(mode=mode, lat=lat, lon=lon, speed_mps=speed, heading_deg=heading, hdop=hdop)


def report(policy, fix, tick_ms, keep_braking=True):
    position = Position(
        unit="U",
        seq=1,
        t_ms=tick_ms,
        lat=fix.lat,
        lon=fix.lon,
        speed_mps=fix.speed_mps,
        heading_deg=fix.heading_deg,
        accel_mps2=policy.braking_mps2 if keep_braking else None,
        fix=fix.mode,
    )
    policy.reported(fix, position, tick_ms)


def drive(policy, fixes, keep_braking=True):
    """Feed one fix a second; return [(second, reason)] for every report."""
    reports = []
    for second, fix in enumerate(fixes):
        reason = policy.decide(fix, second * 1000)
        if reason:
            reports.append((second, reason))
            report(policy, fix, second * 1000, keep_braking)
    return reports


def test_straight_at_constant_speed_needs_only_heartbeats():
    policy = ReportingPolicy(threshold_m=25, heartbeat_moving_s=60)
    fixes = [fix_at(0, 10.0 * second, speed=10.0, heading=0.0) for second in range(200)]
    reports = drive(policy, fixes)
    assert reports[0] == (0, FIX_REGAINED)
    # The extrapolation horizon (30 s) ends the free ride: then it reports "moved".
    assert all(reason in (MOVED, HEARTBEAT) for _, reason in reports[1:])
    assert len(reports) <= 200 / predictor.MAX_EXTRAPOLATION_S + 2


def test_a_turn_is_reported_within_the_threshold():
    policy = ReportingPolicy(threshold_m=25)
    fixes = [fix_at(0, 10.0 * s, speed=10.0, heading=0.0) for s in range(10)]
    fixes += [fix_at(10.0 * s, 90.0, speed=10.0, heading=90.0) for s in range(1, 10)]
    reports = drive(policy, fixes)
    turn_reports = [second for second, reason in reports if reason == MOVED and second >= 10]
    # Off by more than 25 m within 3 s of the turn.
    assert turn_reports and turn_reports[0] <= 12


def test_the_command_room_error_stays_within_the_threshold_on_a_winding_drive():
    # The gateway extrapolates the last report; after each fix's decision the
    # gap between that extrapolation and the true position is the error.
    policy = ReportingPolicy(threshold_m=25, min_interval_s=0)
    east = north = 0.0
    last = last_s = None
    worst = 0.0
    reports = 0
    for second in range(600):
        heading = (second * 3) % 360  # a slow circle, 9 m/s
        east += 9.0 * _sin_deg(heading)
        north += 9.0 * _cos_deg(heading)
        fix = fix_at(east, north, speed=9.0, heading=heading)
        if policy.decide(fix, second * 1000):
            report(policy, fix, second * 1000)
            last, last_s = fix, second
            reports += 1
            continue
        lat, lon = predictor.predict(
            last.lat, last.lon, last.speed_mps, last.heading_deg, second - last_s
        )
        worst = max(worst, predictor.distance_m(lat, lon, fix.lat, fix.lon))
    assert worst <= 25.0
    assert reports < 600 / 3  # far fewer than a fixed 1-s reporter


def _sin_deg(degrees):
    import math

    return math.sin(math.radians(degrees))


def _cos_deg(degrees):
    import math

    return math.cos(math.radians(degrees))


def test_parked_uses_the_long_heartbeat():
    policy = ReportingPolicy(heartbeat_moving_s=60, heartbeat_parked_s=300)
    reports = drive(policy, [fix_at(0, 0) for _ in range(700)])
    assert [second for second, _ in reports] == [0, 300, 600]
    assert [reason for _, reason in reports[1:]] == [HEARTBEAT, HEARTBEAT]


def test_fix_loss_and_regain_are_reported_once_each():
    policy = ReportingPolicy()
    no_fix = Fix(mode=MODE_NO_FIX)
    fixes = [fix_at(0, 0)] * 5 + [no_fix] * 5 + [fix_at(0, 0)] * 5
    reports = drive(policy, fixes)
    assert reports == [(0, FIX_REGAINED), (5, FIX_LOST), (10, FIX_REGAINED)]


def test_poor_hdop_is_no_position():
    policy = ReportingPolicy(max_hdop=5.0)
    assert not policy.usable(fix_at(0, 0, hdop=8.0))
    assert policy.usable(fix_at(0, 0, hdop=4.0, mode=MODE_2D))
    reports = drive(policy, [fix_at(0, 0, hdop=8.0)] * 3)
    assert reports == []


def test_min_interval_holds_back_even_a_large_deviation():
    policy = ReportingPolicy(threshold_m=25, min_interval_s=5)
    reports = drive(policy, [fix_at(0, 100.0 * s, speed=0.0) for s in range(11)])
    assert [second for second, _ in reports] == [0, 5, 10]


def test_force_reports_a_usable_fix_at_once():
    policy = ReportingPolicy(min_interval_s=5)
    report(policy, fix_at(0, 0), 0)
    policy.had_fix = True
    assert policy.decide(fix_at(0, 0), 100, force="status") == "status"
    assert policy.decide(Fix(mode=MODE_NO_FIX), 200, force="status") == FIX_LOST


def test_braking_is_measured_from_the_last_two_fixes_speeds():
    policy = ReportingPolicy()
    policy.decide(fix_at(0, 0, speed=15.0), 0)
    assert policy.braking_mps2 is None  # one fix says nothing about braking
    policy.decide(fix_at(0, 14, speed=12.5), 1000)
    assert policy.braking_mps2 == -2.5
    policy.decide(fix_at(0, 26, speed=12.0), 2000)
    assert policy.braking_mps2 is None  # -0.5 m/s^2 is within the speed's noise
    policy.decide(fix_at(0, 36, speed=16.0), 3000)
    assert policy.braking_mps2 is None  # speeding up is not reported
    policy.decide(fix_at(0, 50, speed=10.0), 6000)
    assert policy.braking_mps2 is None  # speeds 3 s apart are no measure of braking now
    policy.decide(Fix(mode=MODE_NO_FIX), 7000)
    policy.decide(fix_at(0, 60, speed=5.0), 8000)
    assert policy.braking_mps2 is None  # nor across a lost fix


def test_a_stop_reported_while_braking_needs_no_more_reports():
    # 15 m/s north, braking at 2.5 m/s^2 from second 10, stopped at second 16, parked.
    fixes, north, speed = [], 0.0, 15.0
    for second in range(120):
        fixes.append(fix_at(0, north, speed=speed))
        decel = 2.5 if second >= 10 else 0.0
        north += max(speed - decel / 2, 0.0) if speed > 0 else 0.0
        speed = max(speed - decel, 0.0)
    policy = ReportingPolicy()
    reports = drive(policy, fixes)
    assert [reason for _, reason in reports] == [FIX_REGAINED, MOVED]
    assert policy.last_report.accel_mps2 == -2.5
    # Without the deceleration the stop is overshot, and reported again.
    assert len(drive(ReportingPolicy(), fixes, keep_braking=False)) > len(reports)
