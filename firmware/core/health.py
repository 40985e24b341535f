"""What goes into a `health` message: what changed since the broker last took one.

Health goes out every minute, and most of it (free disk, outbox depth, often the
temperature at 1 degree) is what the command room already has. So a health message
carries only the fields whose value, at the wire's precision, differs from the last
health the broker acknowledged, plus the uptime (it moves by itself, and a smaller
one shows a reboot); the firmware version is left out too, since `online` carries it
at every connect. Every `full_every`-th message, and the first after boot, carries
every field measured, so a gateway that lost its state (or a health the broker took
but the gateway never got) is made whole within that many messages. The gateway
keeps the last value of each field (gateway/state.py). Plain Python; runs on
MicroPython. Imports protocol/ only.
"""

from protocol import codec
from protocol.messages import Health

# Sent in every message: it moves by itself, and going back shows a reboot.
ALWAYS = ("uptime_s",)
# Only in the full message: `online` says it at every connect.
FULL_ONLY = ("firmware",)
_ENVELOPE = ("unit", "seq", "t_ms", "clock_time")
FIELDS = tuple(name for name in Health.FIELDS if name not in _ENVELOPE)


class HealthDiff:
    """Turns fully measured Health messages into the ones to send."""

    def __init__(self, full_every=10):
        self.full_every = full_every
        self.known = None  # field -> value the broker took; None until the first is taken
        self.since_full = None  # messages made since the last full one; None before it

    def outgoing(self, health):
        """`health`, every field measured, as it goes out: at wire precision, what changed."""
        measured = codec.as_received(health)
        if self.since_full is None or self.since_full + 1 >= self.full_every:
            self.since_full = 0
            return measured
        self.since_full += 1
        known = self.known or {}
        left_out = {}
        for name in FIELDS:
            if name in ALWAYS:
                continue
            if name in FULL_ONLY or known.get(name) == getattr(measured, name):
                left_out[name] = None
        return measured.replace(**left_out)

    def delivered(self, health):
        """The broker took `health`: its fields are what the command room now has."""
        known = self.known if self.known is not None else {}
        for name in FIELDS:
            value = getattr(health, name)
            if value is not None:
                known[name] = value
        self.known = known
