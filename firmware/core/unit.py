"""The unit's brain: events in, actions out, no I/O.

A runtime (firmware/pi, firmware/pico, the fleet simulator) feeds a `Unit`
events — a GPS fix, a raw button edge, the link going up or down, a broker
PUBACK, a downlink message, a clock tick — each with its tick in ms, and
carries out the actions it returns: publish a payload, set an LED pattern,
sound the buzzer, measure health. The Unit owns the status and SOS state
machines, the reporting policy, sequence numbers and the outbox.

What the rider sees (LED patterns; the GPIO driver times the blinking):
- the LED of the current status button blinks until the gateway has stored
  the change, then stays on;
- the SOS LED flashes fast while the alarm is only sent, blinks slowly once
  the gateway has it, and stays on when a dispatcher has acknowledged it;
- the LED of the en-route button flashes while an assignment is pending;
- `gps` on with a usable fix, blinking without; `link` on while connected.
Runs on MicroPython: plain classes, no typing at run time.
"""

import json

from firmware.core import reporting
from firmware.core.buttons import HOLD, PRESS, RELEASE, Buttons
from firmware.core.config import SOS, UnitConfig
from firmware.core.fix import MODE_3D, MODE_NO_FIX, Fix
from firmware.core.health import HealthDiff
from firmware.core.signals import (
    ACKNOWLEDGED,
    ASSIGNMENT,
    BLINK,
    CLICK,
    FLASH,
    OFF,
    ON,
    RECEIVED,
    SOS_SENT,
)
from protocol import codec, status, topics
from protocol.errors import ProtocolError
from protocol.messages import (
    FIX_NONE,
    SOS_CANCEL,
    SOS_RAISE,
    Ack,
    Assignment,
    ConfigChange,
    Health,
    Online,
    Ping,
    Position,
    Sos,
    SosAck,
    StatusChange,
)

FIRMWARE_VERSION = "0.1.0"

# Action kinds.
PUBLISH = "publish"
LED = "led"
BUZZER = "buzzer"
MEASURE_HEALTH = "measure_health"

# SOS stages.
SENT = "sent"
GATEWAY = "received"
PERSON = "acknowledged"
CANCELLING = "cancelling"

SEEN_COMMANDS = 32  # how many command ids are remembered to ignore repeats
SEQ_FLOOR_MS = 100  # a fresh sequence starts at the wall clock in these units
GPS_SILENCE_MS = 5000  # no fix event for this long is a lost fix
STATE_FILE = "unit.state"


class Action:
    """Something for the runtime to do.

    publish: topic, payload, qos, retain, token (the outbox token, or None for
    presence messages outside the outbox); led: name, pattern; buzzer:
    pattern; measure_health: nothing (answer with Unit.on_health).
    """

    FIELDS = ("topic", "payload", "qos", "retain", "token", "name", "pattern")

    def __init__(
        self,
        kind,
        topic=None,
        payload=None,
        qos=1,
        retain=False,
        token=None,
        name=None,
        pattern=None,
    ):
        self.kind = kind
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.token = token
        self.name = name
        self.pattern = pattern

    def _key(self):
        return (self.kind,) + tuple(getattr(self, name) for name in self.FIELDS)

    def __eq__(self, other):
        return isinstance(other, Action) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self):
        if self.kind == PUBLISH:
            return "Action(publish %s token=%r)" % (self.topic, self.token)
        return "Action(%s %s)" % (self.kind, self.name or self.pattern or "")


def led(name, pattern):
    return Action(LED, name=name, pattern=pattern)


def buzzer(pattern):
    return Action(BUZZER, pattern=pattern)


class _Alarm:
    def __init__(self, alarm_id, tick_ms):
        self.alarm_id = alarm_id
        self.raised_tick = tick_ms
        self.stage = SENT
        self.last_sent_tick = tick_ms
        self.seqs = [alarm_id]  # every seq sent for this alarm
        self.cancel = None  # the cancel message, once asked for


class Unit:
    """One unit's core. `seqs` is a firmware.core.seqstore.SequenceStore, `outbox` an Outbox."""

    def __init__(self, unit_id, config, seqs, outbox, firmware=FIRMWARE_VERSION, storage=None):
        self.unit_id = topics.check_unit_id(unit_id)
        self.config = config if isinstance(config, UnitConfig) else UnitConfig(**config)
        self.seqs = seqs
        self.outbox = outbox
        self.firmware = firmware
        self.policy = reporting.ReportingPolicy(
            self.config.threshold_m,
            self.config.heartbeat_moving_s,
            self.config.heartbeat_parked_s,
            self.config.min_interval_s,
            self.config.max_hdop,
        )
        self.buttons = Buttons(list(self.config.buttons), self.config.debounce_ms, self._holds())
        self.cmd_topic = topics.cmd_topic(unit_id)
        self.start_tick = 0
        self.offset_ms = 0  # epoch ms = tick + offset_ms
        self.gps_time = False  # offset_ms comes from trusted GPS time
        self.consecutive_3d = 0
        self.last_fix = None
        self.reported_fix = None  # the fix of the latest position report
        self.link_up = False
        self.inflight = {}  # outbox token -> message
        self.status = None  # current status code
        self.status_pending = None  # StatusChange not yet acknowledged by the gateway
        self.status_delivered_tick = None  # when the broker took the pending one
        self.alarm = None
        self.assignment = None
        self.next_health_tick = 0
        self.health_diff = HealthDiff(self.config.health_full_every)
        self.seen_commands = []
        self.rejected_downlinks = 0
        self.last_fix_tick = None
        # Where the alarm and the pending status survive a restart (None: RAM only).
        self.storage = storage
        self.state_errors = 0

    # -- events ---------------------------------------------------------

    def start(self, tick_ms, wall_ms):
        """Boot: `wall_ms` is the system clock (epoch ms), used until GPS time is trusted."""
        self.start_tick = tick_ms
        self.offset_ms = wall_ms - tick_ms
        # Whatever the sequence files say (a new unit, a wiped card, damaged or
        # stale files after a failing card), continue above the records still in
        # the outbox and above the clock: tenths of a second since the epoch
        # outgrow a unit's sequence unless it averaged ten messages a second over
        # its whole life. Needs a sane clock: Raspberry Pi OS's fake-hwclock keeps
        # it from going back to 1970 (docs/outbox.md).
        floor = wall_ms // SEQ_FLOOR_MS
        highest = self.outbox.highest_seq()
        self.seqs.restart_above(floor if highest is None else max(floor, highest))
        self.next_health_tick = tick_ms + int(self.config.health_interval_s * 1000)
        self._restore(tick_ms)
        actions = [led("gps", BLINK), led("link", OFF)] + self._status_leds()
        return actions + (self._alarm_leds() or [led("sos", OFF)])

    def on_fix(self, fix, tick_ms):
        fix = _within_limits(fix)
        self.last_fix_tick = tick_ms
        self._learn_time(fix, tick_ms)
        was_usable = self.last_fix is not None and self.policy.usable(self.last_fix)
        self.last_fix = fix
        actions = []
        usable = self.policy.usable(fix)
        if usable != was_usable:
            actions.append(led("gps", ON if usable else BLINK))
        force = "sos" if self.alarm and self.alarm.stage != CANCELLING else None
        reason = self.policy.decide(fix, tick_ms, force)
        if reason:
            actions += self._report_position(fix, tick_ms, reason)
        return actions

    def on_button(self, pin, level, tick_ms):
        """A raw edge of button `pin`: `level` is the pin level (active low by default)."""
        if pin not in self.config.buttons:
            return []
        pressed = (level == 0) if self.config.active_low else bool(level)
        return self._on_button_events(self.buttons.on_edge(pin, pressed, tick_ms), tick_ms)

    def on_link(self, up, tick_ms):
        self.link_up = up
        if not up:
            self.inflight = {}
            self.outbox.link_down(tick_ms)
            return [led("link", OFF)]
        if self.alarm is not None:
            # The alarm waiting in the outbox goes out now: repeat from here.
            self.alarm.last_sent_tick = tick_ms
        return [led("link", ON), self._presence(True, tick_ms)] + self._drain()

    def on_puback(self, token, tick_ms):
        message = self.inflight.pop(token, None)
        if token is None or message is None:
            return []
        self.outbox.on_puback(token)
        if message.KIND == "health":
            self.health_diff.delivered(message)
        pending = self.status_pending
        if pending is not None and message.KIND == "status" and message.seq == pending.seq:
            self.status_delivered_tick = tick_ms
        return self._drain()

    def on_downlink(self, topic, payload, tick_ms):
        try:
            command = codec.decode(topic, payload)
        except ProtocolError:
            self.rejected_downlinks += 1
            return []
        if topic != self.cmd_topic:
            return []
        if isinstance(command, Assignment):
            # Only an assignment is worth recognising again (no second alarm for
            # the rider); acks and the rest are harmless to apply twice.
            if command.cmd_id in self.seen_commands:
                return []
            self.seen_commands = (self.seen_commands + [command.cmd_id])[-SEEN_COMMANDS:]
        handler = _COMMAND_HANDLERS.get(type(command))
        return handler(self, command, tick_ms) if handler else []

    def on_tick(self, tick_ms):
        actions = self._on_button_events(self.buttons.on_tick(tick_ms), tick_ms)
        self.outbox.tick(tick_ms)
        actions += self._gps_silence(tick_ms)
        actions += self._repeat_sos(tick_ms)
        actions += self._retry_cancel(tick_ms)
        actions += self._retry_status(tick_ms)
        if tick_ms >= self.next_health_tick:
            self.next_health_tick = tick_ms + int(self.config.health_interval_s * 1000)
            actions.append(Action(MEASURE_HEALTH))
        return actions + self._drain()

    def on_health(self, tick_ms, cpu_temp_c=None, disk_free_mb=None, supply_v=None):
        """The runtime's answer to MEASURE_HEALTH."""
        fix = self.last_fix
        health = Health(
            unit=self.unit_id,
            seq=self.seqs.next(),
            cpu_temp_c=cpu_temp_c,
            disk_free_mb=disk_free_mb,
            outbox_depth=self.outbox.depth(),
            sats=fix.sats if fix else None,
            hdop=fix.hdop if fix else None,
            uptime_s=(tick_ms - self.start_tick) // 1000,
            firmware=self.firmware,
            supply_v=supply_v,
            **self._time(tick_ms),
        )
        self.outbox.add(self.health_diff.outgoing(health), tick_ms)
        return self._drain()

    def sign_off(self, tick_ms):
        """Going off the air on purpose: a clean DISCONNECT suppresses the last will."""
        self.link_up = False
        return [self._presence(False, tick_ms)]

    def will(self, tick_ms):
        """(topic, payload) of the last will, to give the broker at connect time."""
        will = self._presence(False, tick_ms)
        return will.topic, will.payload

    def _presence(self, online, tick_ms):
        """A retained `online` publish with a fresh seq, outside the outbox (state, not history)."""
        message = Online(
            unit=self.unit_id,
            seq=self.seqs.next(),
            online=online,
            firmware=self.firmware if online else None,
            **self._time(tick_ms),
        )
        return Action(
            PUBLISH,
            topic=codec.topic_of(message),
            payload=codec.encode(message),
            qos=1,
            retain=True,
            token=None,
        )

    def next_wakeup_ms(self, tick_ms):
        """When on_tick is next needed: soon for a button being debounced, else in a second."""
        deadline = self.buttons.next_deadline_ms()
        later = tick_ms + 1000
        return later if deadline is None else min(deadline, later)

    # -- buttons ----------------------------------------------------------

    def _holds(self):
        holds = {}
        for pin in self.config.buttons:
            if self.config.buttons[pin] == SOS or pin == self.config.sos_hold_button:
                holds[pin] = (self.config.sos_hold_ms, self.config.sos_cancel_hold_ms)
        return holds

    def _on_button_events(self, events, tick_ms):
        actions = []
        for event in events:
            actions += _BUTTON_HANDLERS[event.kind](self, event, tick_ms)
        return actions

    def _on_press(self, event, tick_ms):
        if self.config.buttons[event.pin] == SOS:
            return [buzzer(CLICK)] + self._raise_sos(tick_ms) if self._may_raise() else []
        if event.pin == self.config.sos_hold_button:
            return []  # decided on release: a long press is an SOS, not a status
        return [buzzer(CLICK)] + self._change_status(self.config.status_of(event.pin), tick_ms)

    def _on_release(self, event, tick_ms):
        if event.pin != self.config.sos_hold_button or event.held_ms >= self.config.sos_hold_ms:
            return []
        return [buzzer(CLICK)] + self._change_status(self.config.status_of(event.pin), tick_ms)

    def _on_hold(self, event, tick_ms):
        alarm = self.alarm
        if event.held_ms == self.config.sos_cancel_hold_ms:
            # Only a press that began after the alarm was raised may cancel it.
            if alarm and alarm.stage != CANCELLING and event.since_ms > alarm.raised_tick:
                return self._cancel_sos(tick_ms)
            return []
        if event.pin == self.config.sos_hold_button and self._may_raise():
            return self._raise_sos(tick_ms)
        return []

    def _may_raise(self):
        """No alarm open, or the last one is being cancelled: a new SOS is never refused."""
        return self.alarm is None or self.alarm.stage == CANCELLING

    # -- status -------------------------------------------------------------

    def _change_status(self, code, tick_ms):
        incident = None
        if code == status.EN_ROUTE and self.assignment is not None:
            incident = self.assignment.incident
            self.assignment = None
        lat, lon = self._usable_position()
        change = StatusChange(
            unit=self.unit_id,
            seq=self.seqs.next(),
            status=code,
            incident=incident,
            lat=lat,
            lon=lon,
            **self._time(tick_ms),
        )
        self.status = code
        self.status_pending = change
        self.status_delivered_tick = None
        self.outbox.add(change, tick_ms)
        self._save_state()
        actions = self._status_leds()
        # The status carries the position; a report of the fix beside it is only news when
        # that fix has not been reported yet (else the room would get one point twice).
        fix = self.last_fix
        if fix is not None and fix is not self.reported_fix and self.policy.usable(fix):
            actions += self._report_position(fix, tick_ms, "status")
        return actions + self._drain()

    def _status_leds(self):
        pattern = BLINK if self.status_pending is not None else ON
        actions = []
        for pin in self.config.buttons:
            if self.config.buttons[pin] == SOS:
                continue
            code = self.config.status_of(pin)
            if self.assignment is not None and code == status.EN_ROUTE:
                actions.append(led(pin, FLASH))
            else:
                actions.append(led(pin, pattern if code == self.status else OFF))
        return actions

    def _retry_status(self, tick_ms):
        delivered = self.status_delivered_tick
        if self.status_pending is None or delivered is None or not self.link_up:
            return []
        if tick_ms - delivered < self.config.status_retry_s * 1000:
            return []
        # Same message, same seq: the gateway stores it once and acknowledges again.
        self.status_delivered_tick = None
        self.outbox.add(self.status_pending, tick_ms)
        return []

    # -- SOS ----------------------------------------------------------------

    def _raise_sos(self, tick_ms):
        seq = self.seqs.next()
        self.alarm = _Alarm(seq, tick_ms)
        self.outbox.add(self._sos_message(SOS_RAISE, seq, tick_ms), tick_ms)
        self._save_state()
        return [led("sos", FLASH), buzzer(SOS_SENT)] + self._drain()

    def _sos_message(self, action, seq, tick_ms):
        lat, lon = self._usable_position()
        fix = self.last_fix if lat is not None else None
        return Sos(
            unit=self.unit_id,
            seq=seq,
            action=action,
            alarm_id=self.alarm.alarm_id,
            lat=lat,
            lon=lon,
            acc_m=fix.acc_m if fix else None,
            speed_mps=fix.speed_mps if fix else None,
            heading_deg=fix.heading_deg if fix else None,
            **self._time(tick_ms),
        )

    def _repeat_sos(self, tick_ms):
        alarm = self.alarm
        if alarm is None or alarm.stage in (PERSON, CANCELLING) or not self.link_up:
            return []
        if tick_ms - alarm.last_sent_tick < self.config.sos_repeat_s * 1000:
            return []
        seq = self.seqs.next()
        alarm.seqs.append(seq)
        alarm.last_sent_tick = tick_ms
        self.outbox.add(self._sos_message(SOS_RAISE, seq, tick_ms), tick_ms)
        return []

    def _cancel_sos(self, tick_ms):
        alarm = self.alarm
        alarm.stage = CANCELLING
        alarm.cancel = self._sos_message(SOS_CANCEL, self.seqs.next(), tick_ms)
        alarm.last_sent_tick = tick_ms
        self.outbox.add(alarm.cancel, tick_ms)
        self._save_state()
        return [led("sos", BLINK), buzzer(CLICK)] + self._drain()

    def _retry_cancel(self, tick_ms):
        alarm = self.alarm
        if alarm is None or alarm.stage != CANCELLING or not self.link_up:
            return []
        if tick_ms - alarm.last_sent_tick < self.config.status_retry_s * 1000:
            return []
        # Same message, same seq; the outbox ignores it while it still holds it.
        alarm.last_sent_tick = tick_ms
        self.outbox.add(alarm.cancel, tick_ms)
        return []

    def _alarm_leds(self):
        alarm = self.alarm
        if alarm is None:
            return []
        return [led("sos", _ALARM_LED[alarm.stage])]

    # -- commands -----------------------------------------------------------

    def _on_ack(self, ack, tick_ms):
        def acked(seq):
            return any(first <= seq <= last for first, last in ack.ranges)

        actions = []
        if self.status_pending is not None and acked(self.status_pending.seq):
            self.status_pending = None
            self._save_state()
            actions += self._status_leds()
        alarm = self.alarm
        if alarm is None:
            return actions
        if alarm.stage == CANCELLING and acked(alarm.cancel.seq):
            self.alarm = None
            self._save_state()
            return actions + [led("sos", OFF), buzzer(RECEIVED)]
        if alarm.stage == SENT and any(acked(seq) for seq in alarm.seqs):
            alarm.stage = GATEWAY
            self._save_state()
            actions += [led("sos", BLINK), buzzer(RECEIVED)]
        return actions

    def _on_sos_ack(self, command, tick_ms):
        alarm = self.alarm
        if (
            alarm is None
            or command.alarm_id != alarm.alarm_id
            or alarm.stage in (PERSON, CANCELLING)
        ):
            return []
        alarm.stage = PERSON
        self._save_state()
        return [led("sos", ON), buzzer(ACKNOWLEDGED)]

    def _on_assignment(self, command, tick_ms):
        self.assignment = command
        return [buzzer(ASSIGNMENT)] + self._status_leds()

    def _on_config(self, command, tick_ms):
        for key, value in command.settings.items():
            if hasattr(self.policy, key):
                setattr(self.policy, key, value)
            if hasattr(self.config, key):
                setattr(self.config, key, value)
        return []

    def _on_ping(self, command, tick_ms):
        if self.last_fix is None:
            return []
        return self._report_position(self.last_fix, tick_ms, "requested")

    # -- reporting ----------------------------------------------------------

    def _report_position(self, fix, tick_ms, reason):
        usable = self.policy.usable(fix)
        position = Position(
            unit=self.unit_id,
            seq=self.seqs.next(),
            lat=fix.lat if usable else None,
            lon=fix.lon if usable else None,
            speed_mps=fix.speed_mps if usable else None,
            heading_deg=fix.heading_deg if usable else None,
            accel_mps2=self.policy.braking_mps2 if usable else None,
            alt_m=fix.alt_m
            if usable and fix.mode == MODE_3D and self.config.report_altitude
            else None,
            acc_m=fix.acc_m if usable else None,
            hdop=fix.hdop,
            fix=fix.mode if usable else FIX_NONE,
            reason=reason,
            **self._fix_time(fix, tick_ms),
        )
        # The policy predicts from the report as the command room decodes it (rounded),
        # so its bound holds for what the room draws, not for the unit's own values.
        self.policy.reported(fix, codec.as_received(position), tick_ms)
        self.reported_fix = fix
        self.outbox.add(position, tick_ms)
        return self._drain()

    def _usable_position(self):
        fix = self.last_fix
        if fix is None or not self.policy.usable(fix):
            return None, None
        return fix.lat, fix.lon

    def _gps_silence(self, tick_ms):
        """A receiver that stops talking has lost its fix too (gpsd or serial went quiet)."""
        last = self.last_fix_tick
        if last is None or tick_ms - last < GPS_SILENCE_MS or not self.policy.had_fix:
            return []
        return self.on_fix(Fix(mode=MODE_NO_FIX), tick_ms)

    # -- surviving a restart -------------------------------------------------

    def _save_state(self):
        """The open alarm and the unacknowledged status, synced: a restart repeats them."""
        if self.storage is None:
            return
        alarm = self.alarm
        state = {
            "status": self.status,
            "pending": _payload_text(self.status_pending),
            "alarm": None
            if alarm is None
            else {
                "id": alarm.alarm_id,
                "stage": alarm.stage,
                "cancel": _payload_text(alarm.cancel),
            },
        }
        try:
            self.storage.replace(STATE_FILE, json.dumps(state).encode())
        except OSError:
            self.state_errors += 1

    def _restore(self, tick_ms):
        if self.storage is None:
            return
        try:
            data = self.storage.read(STATE_FILE)
            state = json.loads(data) if data else {}
            self.status = state.get("status")
            self.status_pending = self._message(state.get("pending"), "status")
            if self.status_pending is not None:
                self.status_delivered_tick = tick_ms  # re-sent after status_retry_s unless acked
            saved = state.get("alarm")
            if saved:
                self.alarm = _Alarm(saved["id"], tick_ms)
                self.alarm.stage = saved["stage"]
                self.alarm.cancel = self._message(saved.get("cancel"), "sos")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            # A damaged state file costs the LEDs' memory, never the messages:
            # the outbox still holds and sends them.
            self.state_errors += 1

    def _message(self, text, kind):
        return None if not text else codec.decode(topics.topic(self.unit_id, kind), text.encode())

    # -- time and publishing -----------------------------------------------

    def _learn_time(self, fix, tick_ms):
        if fix.mode != MODE_3D or fix.time_ms is None:
            self.consecutive_3d = 0
            return
        self.consecutive_3d += 1
        if self.consecutive_3d >= self.config.gps_time_trust_fixes:
            self.offset_ms = fix.time_ms - tick_ms
            self.gps_time = True

    def _time(self, tick_ms):
        return {"t_ms": tick_ms + self.offset_ms, "clock_time": not self.gps_time}

    def _fix_time(self, fix, tick_ms):
        if self.gps_time and fix.time_ms is not None:
            return {"t_ms": fix.time_ms, "clock_time": False}
        return self._time(tick_ms)

    def _drain(self):
        if not self.link_up:
            return []
        room = self.config.max_inflight - len(self.inflight)
        if room <= 0:
            return []
        actions = []
        for token, message in self.outbox.next_publishes(room):
            self.inflight[token] = message
            publish = Action(
                PUBLISH,
                topic=codec.topic_of(message),
                payload=codec.encode(message),
                qos=1,
                retain=False,
                token=token,
            )
            actions.append(publish)
        return actions


def _payload_text(message):
    return None if message is None else codec.encode(message).decode()


# Fix fields the protocol bounds; a receiver's value outside them (a glitch,
# a 100 HDOP) is dropped rather than allowed to stop a message from encoding.
_FIX_LIMITS = {
    field.attr: (field.lo, field.hi)
    for field in codec.POSITION_FIELDS
    if field.lo is not None and field.attr in Fix.FIELDS
}


def _within_limits(fix):
    values = fix.values()
    for name, (lo, hi) in _FIX_LIMITS.items():
        value = values[name]
        # `not lo <= value <= hi` is also true for NaN.
        if value is not None and not lo <= value <= hi:
            values[name] = None
    if values["lat"] is None or values["lon"] is None:
        values["mode"] = MODE_NO_FIX
    return Fix(**values)


_ALARM_LED = {SENT: FLASH, GATEWAY: BLINK, PERSON: ON, CANCELLING: BLINK}

_BUTTON_HANDLERS = {PRESS: Unit._on_press, RELEASE: Unit._on_release, HOLD: Unit._on_hold}
_COMMAND_HANDLERS = {
    Ack: Unit._on_ack,
    SosAck: Unit._on_sos_ack,
    Assignment: Unit._on_assignment,
    ConfigChange: Unit._on_config,
    Ping: Unit._on_ping,
}
