"""When to report a position: bounded error, fix changes, heartbeats.

The unit runs the gateway's predictor (protocol.predictor) on its own last
report and reports when the command room's extrapolation would be more than
`threshold_m` from the true position; also when the fix is lost or regained,
and at least every heartbeat (shorter while moving than while parked); never
more often than `min_interval_s`. A fix below 2D or with HDOP above
`max_hdop` is not a usable position. Status changes, SOS and pings force a
report (the Unit asks with `force`). Plain Python; runs on MicroPython.
"""

from protocol import predictor

# Braking harder than this is reported with the report (Doppler speed is good to about
# 0.1 m/s, so a difference over one second is good to about 0.15 m/s^2).
BRAKING_MIN_MPS2 = 0.8
# Speeds further apart than this are no measure of the braking now.
BRAKING_WINDOW_S = 2.0

MOVED = "moved"
HEARTBEAT = "heartbeat"
FIX_LOST = "fix_lost"
FIX_REGAINED = "fix_regained"


class ReportingPolicy:
    """Decides, fix by fix, whether the unit reports and why."""

    def __init__(
        self,
        threshold_m=25.0,
        heartbeat_moving_s=60.0,
        heartbeat_parked_s=300.0,
        min_interval_s=1.0,
        max_hdop=5.0,
    ):
        self.threshold_m = threshold_m
        self.heartbeat_moving_s = heartbeat_moving_s
        self.heartbeat_parked_s = heartbeat_parked_s
        self.min_interval_s = min_interval_s
        self.max_hdop = max_hdop
        self.last_report = None  # the Position last reported with a fix
        self.last_report_tick = None  # tick of the last report of any kind
        self.had_fix = None  # None until the first fix decision
        self.braking_mps2 = None  # deceleration (< 0) at the latest fix, if braking
        self._previous = None  # (tick, speed) of the latest usable fix with a speed

    def usable(self, fix):
        """A fix the command room may be shown: 2D or better, HDOP acceptable."""
        if not fix.has_position():
            return False
        return fix.hdop is None or fix.hdop <= self.max_hdop

    def decide(self, fix, tick_ms, force=None):
        """The reason to report this fix now, or None. `force` is a reason that always reports."""
        usable = self.usable(fix)
        self._observe(fix, usable, tick_ms)
        if usable != self.had_fix and (usable or self.had_fix):
            # First fix, or a change between fix and no fix: say so at once.
            return FIX_REGAINED if usable else FIX_LOST
        if not usable:
            return None
        if force:
            return force
        since_s = self._seconds_since_report(tick_ms)
        if since_s is not None and since_s < self.min_interval_s:
            return None
        if self.last_report is None or self._error_m(fix, since_s) > self.threshold_m:
            return MOVED
        moving = (fix.speed_mps or 0.0) >= predictor.STATIONARY_MPS
        heartbeat_s = self.heartbeat_moving_s if moving else self.heartbeat_parked_s
        if since_s is None or since_s >= heartbeat_s:
            return HEARTBEAT
        return None

    def reported(self, fix, position, tick_ms):
        """The unit sent `position` (a protocol Position, or None for a no-fix report)."""
        self.last_report_tick = tick_ms
        self.had_fix = self.usable(fix)
        if position is not None and position.lat is not None:
            self.last_report = position

    def _observe(self, fix, usable, tick_ms):
        """The deceleration between the last two usable fixes' speeds, if braking."""
        previous = self._previous
        speed = fix.speed_mps if usable else None
        self._previous = None if speed is None else (tick_ms, speed)
        self.braking_mps2 = None
        if previous is None or speed is None:
            return
        elapsed_s = (tick_ms - previous[0]) / 1000
        if 0 < elapsed_s <= BRAKING_WINDOW_S:
            accel = (speed - previous[1]) / elapsed_s
            if accel <= -BRAKING_MIN_MPS2:
                self.braking_mps2 = max(accel, -20.0)

    def _seconds_since_report(self, tick_ms):
        if self.last_report_tick is None:
            return None
        return (tick_ms - self.last_report_tick) / 1000

    def _error_m(self, fix, since_s):
        last = self.last_report
        lat, lon = predictor.predict(
            last.lat, last.lon, last.speed_mps, last.heading_deg, since_s or 0.0, last.accel_mps2
        )
        return predictor.distance_m(lat, lon, fix.lat, fix.lon)
