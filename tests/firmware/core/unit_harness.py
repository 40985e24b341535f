"""A unit core wired to in-memory storage and a fake clock, for tests.

Portable: used by tests that also run under MicroPython. It plays the runtime:
feeds events with ticks, collects the actions, and can answer as the broker
(PUBACK) and the gateway (ack, sos_ack, assignment) would.
"""

from firmware.core.clock import FakeClock
from firmware.core.fix import MODE_3D, Fix
from firmware.core.outbox import Outbox
from firmware.core.seqstore import SequenceStore
from firmware.core.storage import MemoryStorage
from firmware.core.unit import BUZZER, LED, PUBLISH, Unit
from protocol import codec, topics
from protocol.messages import Ack, Assignment, SosAck

UNIT = "KEN-M01"
T0_MS = 1732260000000  # GPS time at tick 0
KENITRA = (34.2610, -6.5802)


class Harness:
    def __init__(self, storage=None, **settings):
        self.clock = FakeClock(0)
        self.storage = storage or MemoryStorage()
        self.unit = Unit(
            UNIT,
            settings,
            SequenceStore(self.storage),
            Outbox(UNIT, self.storage),
            storage=self.storage,
        )
        self.actions = self.unit.start(self.clock.ticks(), T0_MS + 5000)
        self.cmd_id = 0

    # -- driving the unit ----------------------------------------------------

    def run(self, actions):
        self.actions += actions
        return actions

    def advance(self, seconds, step_s=0.01):
        """Let time pass, ticking the core as a runtime would."""
        new = []
        end = self.clock.ticks() + round(seconds * 1000)
        while self.clock.ticks() < end:
            self.clock.advance(min(step_s, (end - self.clock.ticks()) / 1000))
            new += self.unit.on_tick(self.clock.ticks())
        return self.run(new)

    def press(self, pin, hold_s=0.1):
        """Press `pin` (active low: level 0), hold it, let go, wait out the debounce."""
        new = self.unit.on_button(pin, 0, self.clock.ticks())
        new += self.advance(hold_s)
        new += self.unit.on_button(pin, 1, self.clock.ticks())
        return self.run(new + self.advance(0.05))

    def link(self, up):
        return self.run(self.unit.on_link(up, self.clock.ticks()))

    def fix(
        self,
        lat=KENITRA[0],
        lon=KENITRA[1],
        speed=0.0,
        heading=0.0,
        mode=MODE_3D,
        hdop=0.9,
        acc=None,
    ):
        fix = Fix(
            time_ms=T0_MS + self.clock.ticks(),
            mode=mode,
            lat=lat if mode > 1 else None,
            lon=lon if mode > 1 else None,
            speed_mps=speed,
            heading_deg=heading,
            hdop=hdop,
            acc_m=acc,
            sats=9,
        )
        return self.run(self.unit.on_fix(fix, self.clock.ticks()))

    def puback(self, actions=None):
        """The broker acknowledges every publish in `actions` (default: all so far)."""
        new = []
        for action in publishes(self.actions if actions is None else actions):
            if action.token is not None:
                new += self.unit.on_puback(action.token, self.clock.ticks())
        return self.run(new)

    def command(self, message):
        self.cmd_id += 1
        message = message.replace(unit=UNIT, cmd_id=self.cmd_id, t_ms=T0_MS + self.clock.ticks())
        return self.run(
            self.unit.on_downlink(topics.cmd_topic(UNIT), codec.encode(message), self.clock.ticks())
        )

    def gateway_ack(self, *seqs):
        return self.command(Ack(ranges=[(seq, seq) for seq in seqs]))

    def dispatcher_ack(self, alarm_id, by="amina"):
        return self.command(SosAck(alarm_id=alarm_id, by=by))

    def assign(self, incident="INC-7"):
        return self.command(Assignment(incident=incident, lat=34.25, lon=-6.57, text="crash"))


# -- reading actions ---------------------------------------------------------


def publishes(actions):
    return [action for action in actions if action.kind == PUBLISH]


def sent(actions, kind=None):
    """The messages published by `actions`, decoded; batches are flattened."""
    messages = []
    for action in publishes(actions):
        message = codec.decode(action.topic, action.payload)
        items = message.items if message.KIND == "batch" else [message]
        messages += [item for item in items if kind in (None, item.KIND)]
    return messages


def leds(actions, name):
    return [action.pattern for action in actions if action.kind == LED and action.name == name]


def buzzes(actions):
    return [action.pattern for action in actions if action.kind == BUZZER]
