"""What the terminal view of one unit shows for a core's state: pure, no terminal.

`Recorder` plays the unit's board: it takes the LED and buzzer actions the core
returns into the GPIO drivers' `PatternPlayer` (so an LED blinks on screen as it
would on the handlebar) and logs the commands arriving on `cmd`. `describe()`
turns the core, the recorder and the time into a `Panel` of plain values and
text that simulators/unit_view.py lays out; tests check a Panel with no terminal.

Imports the core, protocol and firmware/drivers/gpio_board.py; no I/O.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from firmware.core.config import SOS
from firmware.core.signals import (
    BLINK,
    BUZZER_PATTERNS,
    CLICK,
    FLASH,
    GPS_LED,
    LINK_LED,
    OFF,
    ON,
    SOS_LED,
)
from firmware.core.unit import BUZZER, CANCELLING, GATEWAY, LED, PERSON, SENT, Action
from firmware.drivers.gpio_board import BUZZER as BUZZER_LEVEL
from firmware.drivers.gpio_board import CORE_LEDS, PatternPlayer
from protocol import codec, status
from protocol.errors import ProtocolError
from protocol.messages import Ack, Assignment, ConfigChange, Ping, SosAck

SOS_KEY = "s"
CANCEL_KEY = "c"
LOG_LINES = 200

# How a pattern looks, in words beside the LED (a still screenshot cannot blink).
LED_WORDS = {OFF: "off", ON: "steady", BLINK: "blinking", FLASH: "flashing"}

# What a status button's LED says to the rider (firmware/core/unit.py).
STATUS_MEANINGS = {
    OFF: "",
    BLINK: "sent, not yet received",
    ON: "received",
    FLASH: "assignment: press to accept",
}
# What the SOS LED says, by the alarm's stage.
SOS_MEANINGS = {
    None: "",
    SENT: "sent, on its way",
    GATEWAY: "received, waiting for a dispatcher",
    PERSON: "acknowledged",
    CANCELLING: "cancelling",
}


@dataclass(frozen=True)
class Lamp:
    """One LED: which, the key of its button ("" if none), its pattern, lit now, its meaning."""

    name: str
    label: str
    key: str
    pattern: str
    lit: bool
    meaning: str

    @property
    def looks(self) -> str:
        return LED_WORDS[self.pattern]


@dataclass(frozen=True)
class Panel:
    unit: str
    buttons: tuple[Lamp, ...]  # the status buttons, in key order
    sos: Lamp
    gps: Lamp
    link: Lamp
    buzzer: str
    buzzing: bool  # the buzzer's level at this instant
    status: str
    assignment: str
    position: str
    outbox: int
    holding: str  # a long press under way, or ""


def status_keys(buttons: dict[str, str]) -> dict[str, str]:
    """Key -> status button: "1", "2", ... in the order of the unit's [buttons]."""
    pins = [pin for pin, action in buttons.items() if action != SOS]
    return {str(number): pin for number, pin in enumerate(pins, start=1)}


def led_names(buttons: dict[str, str]) -> list[str]:
    """The LEDs the core drives: one per status button, and SOS, GPS and link."""
    return [pin for pin, action in buttons.items() if action != SOS] + list(CORE_LEDS)


class Recorder:
    """The board of a unit on screen: LED patterns over time, the buzzer, a log of commands."""

    def __init__(self, leds: Iterable[str], wall: Callable[[], float] = time.time) -> None:
        self.player = PatternPlayer(leds)
        self.buzzes: list[tuple[int, str]] = []  # (tick ms, pattern), every one sounded
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self.noted = 0  # lines ever logged (the log keeps the last LOG_LINES)
        self.acknowledged_by: dict[int, str] = {}  # alarm id -> the dispatcher
        self._wall = wall

    def actions(self, actions: Iterable[Action], now_ms: int) -> None:
        for action in actions:
            if action.kind == LED:
                self.player.set_led(action.name, action.pattern, now_ms)
            elif action.kind == BUZZER:
                self.player.buzz(action.pattern, now_ms)
                self.buzzes.append((now_ms, action.pattern))

    def command(self, topic: str, payload: bytes, core: Any) -> None:
        """A message on `cmd`, logged as the rider would want it said; before the core has it."""
        try:
            command: Any = codec.decode(topic, payload)
        except ProtocolError as exc:
            self.note(f"refused a command: {exc}")
            return
        if command.COMMAND == SosAck.COMMAND:
            self.acknowledged_by[command.alarm_id] = command.by
        self.note(command_line(command, core))

    def note(self, text: str) -> None:
        self.noted += 1
        self.log.append(time.strftime("%H:%M:%S", time.localtime(self._wall())) + "  " + text)


def command_line(command: Any, core: Any) -> str:
    """One log line for a command, naming what it answers in the core's state before it."""
    line = _COMMAND_LINES.get(type(command))
    return line(command, core) if line else f"command {command.COMMAND}"


def _ack_line(ack: Any, core: Any) -> str:
    return "ack from the gateway: " + ", ".join(_acked(ack, core))


def _sos_ack_line(command: Any, core: Any) -> str:
    return f"SOS acknowledged by {command.by}"


def _assignment_line(command: Any, core: Any) -> str:
    return f"assignment to incident {command.incident}: {command.text or '(no text)'}"


def _config_line(command: Any, core: Any) -> str:
    return "new settings: " + ", ".join(f"{k}={v}" for k, v in sorted(command.settings.items()))


def _ping_line(command: Any, core: Any) -> str:
    return "ping: the command room asks for the position"


_COMMAND_LINES: dict[type, Callable[[Any, Any], str]] = {
    Ack: _ack_line,
    SosAck: _sos_ack_line,
    Assignment: _assignment_line,
    ConfigChange: _config_line,
    Ping: _ping_line,
}


def _acked(ack: Any, core: Any) -> list[str]:
    def covers(seq: int | None) -> bool:
        return seq is not None and any(first <= seq <= last for first, last in ack.ranges)

    parts = []
    pending = core.status_pending
    if pending is not None and covers(pending.seq):
        parts.append(f"status {status.name_of(pending.status).replace('_', ' ')} received")
    alarm = core.alarm
    if alarm is not None and alarm.stage == SENT and any(covers(seq) for seq in alarm.seqs):
        parts.append("SOS received")
    if alarm is not None and alarm.cancel is not None and covers(alarm.cancel.seq):
        parts.append("SOS cancel received")
    count = sum(last - first + 1 for first, last in ack.ranges)
    parts.append(f"{count} message{'s' if count != 1 else ''} stored")
    return parts


def describe(
    core: Any,
    recorder: Recorder,
    now_ms: int,
    keys: dict[str, str],
    dead_zone: bool = False,
    holding: tuple[str, int, int] | None = None,
) -> Panel:
    """The panel for `core` at `now_ms`; `holding` is (what, held ms, hold ms) of a long press."""
    levels = recorder.player.levels(now_ms)

    def lamp(name: str, label: str, key: str, meaning: str) -> Lamp:
        pattern = recorder.player.pattern(name)
        return Lamp(name, label, key, pattern, levels[name], meaning)

    buttons = []
    for key, pin in keys.items():
        pattern = recorder.player.pattern(pin)
        label = core.config.buttons[pin].replace("_", " ")
        buttons.append(lamp(pin, label, key, STATUS_MEANINGS[pattern]))
    alarm = core.alarm
    sos_meaning = SOS_MEANINGS[None if alarm is None else alarm.stage]
    if alarm is not None and alarm.stage == PERSON:
        sos_meaning += " by " + recorder.acknowledged_by.get(alarm.alarm_id, "a dispatcher")
    gps_usable = core.last_fix is not None and core.policy.usable(core.last_fix)
    return Panel(
        unit=core.unit_id,
        buttons=tuple(buttons),
        sos=lamp(SOS_LED, "SOS", SOS_KEY, sos_meaning),
        gps=lamp(GPS_LED, "GPS", "", "fix" if gps_usable else "no fix"),
        link=lamp(LINK_LED, "link", "", _link_text(core.link_up, dead_zone)),
        buzzer=_buzzer_text(recorder, now_ms),
        buzzing=levels[BUZZER_LEVEL],
        status=_status_text(core),
        assignment=_assignment_text(core, keys),
        position=_position_text(core.last_fix, gps_usable),
        outbox=core.outbox.depth(),
        holding=_holding_text(holding),
    )


def _link_text(up: bool, dead_zone: bool) -> str:
    if up:
        return "connected"
    return "down: in a dead zone" if dead_zone else "connecting"


def _buzzer_text(recorder: Recorder, now_ms: int) -> str:
    """Sounding for the whole of a pattern, its pauses too; a click is not worth a line."""
    heard = [(tick, pattern) for tick, pattern in recorder.buzzes if pattern != CLICK]
    if not heard:
        return "quiet"
    tick, pattern = heard[-1]
    name = pattern.replace("_", " ")
    playing = now_ms - tick < sum(BUZZER_PATTERNS[pattern])
    if playing and recorder.buzzes[-1][1] != CLICK:
        return f"sounding: {name}"
    return f"quiet (last: {name}, {max(0, now_ms - tick) // 1000} s ago)"


def _status_text(core: Any) -> str:
    if core.status is None:
        return "none yet: press a status key"
    name = status.name_of(core.status).replace("_", " ")
    state = "sent, not yet received" if core.status_pending is not None else "received"
    return f"{name} ({state})"


def _assignment_text(core: Any, keys: dict[str, str]) -> str:
    assignment = core.assignment
    if assignment is None:
        return "none"
    accept = next(
        (key for key, pin in keys.items() if core.config.buttons[pin] == "en_route"), None
    )
    how = f"; press {accept} (en route) to accept" if accept else ""
    return f"incident {assignment.incident}: {assignment.text or '(no text)'}{how}"


def _position_text(fix: Any, usable: bool) -> str:
    if fix is None:
        return "no fix yet"
    if not usable:
        return "no fix" + (f" ({fix.sats} satellites)" if fix.sats is not None else "")
    lat = f"{abs(fix.lat):.5f} {'N' if fix.lat >= 0 else 'S'}"
    lon = f"{abs(fix.lon):.5f} {'E' if fix.lon >= 0 else 'W'}"
    parts = [lat, lon]
    if fix.acc_m is not None:
        parts.append(f"±{fix.acc_m:.0f} m")
    if fix.speed_mps is not None:
        parts.append(f"{fix.speed_mps * 3.6:.0f} km/h")
    return " ".join(parts)


def _holding_text(holding: tuple[str, int, int] | None) -> str:
    if holding is None:
        return ""
    what, held_ms, hold_ms = holding
    return f"holding {what}: {min(held_ms, hold_ms) / 1000:.1f} / {hold_ms / 1000:.1f} s"
