"""A GPS fix as every GPS driver hands it to the core.

Drivers (gpsd, serial NMEA, simulators) fill one `Fix` per receiver epoch;
fields they cannot read stay None. Plain class: runs on MicroPython.
"""

# Fix modes, numbered as gpsd numbers them.
MODE_NO_FIX = 1
MODE_2D = 2
MODE_3D = 3


class Fix:
    """One receiver epoch.

    time_ms: the receiver's UTC time of the fix, ms since the Unix epoch, or None.
    mode: MODE_NO_FIX, MODE_2D or MODE_3D.
    lat, lon: degrees WGS84; speed_mps over ground; heading_deg from true north;
    alt_m above mean sea level; acc_m estimated horizontal error (gpsd's eph,
    or None); hdop; sats used.
    """

    FIELDS = (
        "time_ms",
        "mode",
        "lat",
        "lon",
        "speed_mps",
        "heading_deg",
        "alt_m",
        "acc_m",
        "hdop",
        "sats",
    )

    def __init__(self, **values):
        for name in self.FIELDS:
            setattr(self, name, values.pop(name, None))
        if values:
            raise TypeError("Fix has no field %s" % ", ".join(sorted(values)))
        if self.mode is None:
            self.mode = MODE_NO_FIX

    def has_position(self):
        return self.mode >= MODE_2D and self.lat is not None and self.lon is not None

    def values(self):
        return {name: getattr(self, name) for name in self.FIELDS}

    def __eq__(self, other):
        return type(other) is Fix and self.values() == other.values()

    __hash__ = None  # type: ignore[assignment]  # mutable: not hashable

    def __repr__(self):
        shown = [
            "%s=%r" % (name, getattr(self, name))
            for name in self.FIELDS
            if getattr(self, name) is not None
        ]
        return "Fix(%s)" % ", ".join(shown)
