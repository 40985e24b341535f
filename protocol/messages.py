"""The messages of the balise protocol, as plain objects.

One class per message: the uplink kinds a unit publishes (`Position`, `Batch`,
`StatusChange`, `Sos`, `Health`, `Online`) and the downlink commands the
gateway sends on a unit's `cmd` topic (`Ack`, `SosAck`, `Assignment`,
`ConfigChange`, `Ping`). Classes hold values only; `protocol.codec` checks
and converts them. Plain classes (no dataclasses) so MicroPython runs them.
Units of measure are in the attribute names. Imports nothing.
"""


class Message:
    """Base: keyword construction over FIELDS, value equality, a readable repr."""

    KIND = ""
    FIELDS = ()  # type: tuple[str, ...]
    # Fields whose absence means something other than None.
    DEFAULTS = {"clock_time": False}

    def __init__(self, **values):
        for name in self.FIELDS:
            setattr(self, name, values.pop(name, self.DEFAULTS.get(name)))
        if values:
            raise TypeError("%s has no field %s" % (type(self).__name__, ", ".join(sorted(values))))

    def values(self):
        """The fields as a dict, in FIELDS order."""
        return {name: getattr(self, name) for name in self.FIELDS}

    def replace(self, **changes):
        """A copy with some fields changed."""
        values = self.values()
        values.update(changes)
        return type(self)(**values)

    def __eq__(self, other):
        return type(self) is type(other) and self.values() == other.values()

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # mutable: not hashable

    def __repr__(self):
        shown = ["%s=%r" % (name, getattr(self, name)) for name in self.FIELDS]
        return "%s(%s)" % (type(self).__name__, ", ".join(shown))


# Every uplink message: which unit, its sequence number, and when. `t_ms` is
# GPS time in ms since the Unix epoch, unless `clock_time` says it came from
# the unit's own clock (no GPS time yet).
_ENVELOPE = ("unit", "seq", "t_ms", "clock_time")

_FIX_FIELDS = (
    "lat",
    "lon",
    "speed_mps",
    "heading_deg",
    "accel_mps2",
    "alt_m",
    "acc_m",
    "hdop",
    "fix",
    "sats",
)

# Fix modes, as gpsd numbers them.
FIX_NONE = 1
FIX_2D = 2
FIX_3D = 3

# Why a position was reported (optional; for the command room's diagnostics).
REASONS = ("moved", "heartbeat", "status", "fix_lost", "fix_regained", "sos", "requested")


class Position(Message):
    """A fix (or the loss of one: fix=FIX_NONE and no lat/lon)."""

    KIND = "pos"
    FIELDS = _ENVELOPE + _FIX_FIELDS + ("reason",)
    # The common case, which the wire leaves out (protocol.codec: no `r` means "moved").
    DEFAULTS = {"clock_time": False, "reason": "moved"}


class Batch(Message):
    """Backlog positions sent after a gap, oldest first; each item keeps its own seq."""

    KIND = "batch"
    FIELDS = ("unit", "items")


class StatusChange(Message):
    """The unit's availability changed (a code of protocol.status)."""

    KIND = "status"
    FIELDS = _ENVELOPE + ("status", "incident", "lat", "lon")


SOS_RAISE = "raise"
SOS_CANCEL = "cancel"


class Sos(Message):
    """An SOS raised or cancelled. `alarm_id` is the seq of the message that raised it."""

    KIND = "sos"
    FIELDS = _ENVELOPE + ("action", "alarm_id", "lat", "lon", "acc_m", "speed_mps", "heading_deg")


class Health(Message):
    """The unit's vital signs, about once a minute."""

    KIND = "health"
    FIELDS = _ENVELOPE + (
        "cpu_temp_c",
        "disk_free_mb",
        "outbox_depth",
        "sats",
        "hdop",
        "uptime_s",
        "firmware",
        "supply_v",
    )


class Online(Message):
    """Presence, retained; the same topic carries the last will (online=False)."""

    KIND = "online"
    FIELDS = _ENVELOPE + ("online", "firmware")


# Downlink: every command names its unit (from the topic), the gateway's id for
# the command (so a unit can ignore a repeat) and the gateway's time.
_COMMAND = ("unit", "cmd_id", "t_ms")


class Command(Message):
    KIND = "cmd"
    COMMAND = ""


class Ack(Command):
    """The gateway has stored these seqs: `ranges` is a list of (first, last) pairs."""

    COMMAND = "ack"
    FIELDS = _COMMAND + ("ranges",)


class SosAck(Command):
    """A dispatcher (`by`) has acknowledged the SOS `alarm_id`."""

    COMMAND = "sos_ack"
    FIELDS = _COMMAND + ("alarm_id", "by")


class Assignment(Command):
    """Go to an incident: its id, place and a short text."""

    COMMAND = "assign"
    FIELDS = _COMMAND + ("incident", "lat", "lon", "text")


class ConfigChange(Command):
    """New values for some of the unit's reporting settings (see codec.CONFIG_RANGES)."""

    COMMAND = "config"
    FIELDS = _COMMAND + ("settings",)


class Ping(Command):
    """Report your position now."""

    COMMAND = "ping"
    FIELDS = _COMMAND


UPLINK_CLASSES = (Position, Batch, StatusChange, Sos, Health, Online)
COMMAND_CLASSES = (Ack, SosAck, Assignment, ConfigChange, Ping)
