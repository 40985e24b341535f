"""What a GPS receiver reports for a vehicle's true position.

Horizontal noise with a standard deviation of HDOP x UERE (user equivalent
range error, about 4 m for a consumer receiver at 1 Hz), correlated from one
second to the next as real receivers' errors are; now and then a multipath
jump of 20-60 m for a few seconds (reflections off buildings); no fix at all
inside an outage zone (a tunnel, an underground car park).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from firmware.core.fix import MODE_3D, MODE_NO_FIX, Fix
from protocol.predictor import move
from simulators.world import Vehicle, Zone

UERE_M = 4.0
CORRELATION = 0.9  # how much of last second's error is still there


class GpsReceiver:
    def __init__(
        self,
        rng: random.Random,
        hdop: float = 0.9,
        outages: Sequence[Zone] = (),
        multipath_per_hour: float = 2.0,
    ) -> None:
        self.rng = rng
        self.hdop = hdop
        self.outages = list(outages)
        self.multipath_per_s = multipath_per_hour / 3600
        self._east = self._north = 0.0
        self._jump_s = 0
        self._jump = (0.0, 0.0)

    def observe(self, vehicle: Vehicle, t_ms: int) -> Fix:
        if any(zone.contains(vehicle.lat, vehicle.lon) for zone in self.outages):
            return Fix(time_ms=None, mode=MODE_NO_FIX, sats=self.rng.randint(0, 2))
        hdop = max(0.5, self.hdop + self.rng.gauss(0, 0.1))
        sigma = hdop * UERE_M * math.sqrt(1 - CORRELATION**2)
        self._east = CORRELATION * self._east + self.rng.gauss(0, sigma)
        self._north = CORRELATION * self._north + self.rng.gauss(0, sigma)
        if self._jump_s <= 0 and self.rng.random() < self.multipath_per_s:
            angle, size = self.rng.uniform(0, 2 * math.pi), self.rng.uniform(20, 60)
            self._jump, self._jump_s = (size * math.sin(angle), size * math.cos(angle)), 3
        east, north = self._east, self._north
        if self._jump_s > 0:
            self._jump_s -= 1
            east, north = east + self._jump[0], north + self._jump[1]
            hdop *= 2.5  # receivers see the geometry go bad
        lat, lon = move(vehicle.lat, vehicle.lon, east, north)
        speed = max(0.0, vehicle.speed_mps + self.rng.gauss(0, 0.2))
        return Fix(
            time_ms=t_ms - t_ms % 1000,
            mode=MODE_3D,
            lat=round(lat, 7),
            lon=round(lon, 7),
            speed_mps=round(speed, 2),
            heading_deg=round(vehicle.heading_deg % 360, 1) if speed > 0.5 else None,
            alt_m=round(12.0 + self.rng.gauss(0, 1.5), 1),
            acc_m=round(hdop * UERE_M, 1),
            hdop=round(hdop, 2),
            sats=max(4, min(14, round(10 - (hdop - 1) * 4 + self.rng.gauss(0, 1)))),
        )
