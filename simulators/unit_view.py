"""One simulated unit in a terminal, for a tester's hands: `balise sim unit`.

`HandUnit` is a fleet unit (simulators/fleet.py: the real core, a vehicle and
its GPS receiver, its own paho session with the deployment's credentials) with
no simulated rider: the tester presses its buttons. It feeds what the core
does and what arrives on `cmd` to a `Recorder` (simulators/unit_panel.py).
`UnitView` is the textual app that shows the unit's `Panel` ten times a second
and turns keys into presses: a status key is a short press, SOS and its cancel
are long presses held for the unit's configured times.

The caller runs the unit (`Fleet.run`) on the app's own asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, RichLog, Static

from firmware.core.config import SOS
from firmware.core.fix import MODE_NO_FIX, Fix
from firmware.core.unit import BUZZER, LED
from firmware.drivers.gps import GpsSource, open_gps
from firmware.pi import config as unit_config
from firmware.pi.runtime import close_gps, read_fixes
from protocol import status
from simulators.fleet import PRESS_S, Fleet, FleetOptions, SimUnit
from simulators.unit_panel import (
    CANCEL_KEY,
    SOS_KEY,
    Lamp,
    Panel,
    Recorder,
    describe,
    led_names,
    status_keys,
)

REFRESH_S = 0.1  # fast enough to show a 4 Hz flash
BUTTON_TICK_S = 0.01  # how often the core is ticked while a button settles or is held
HISTORY = 2000  # panels the view keeps of what it showed, for tests and a tester's questions
SHOWN_HOLD_MS = 500  # a press held longer than this shows its progress
LIT = {"sos": "bold red", "gps": "bold cyan", "link": "bold cyan"}
LIT_STATUS = "bold green"


class HandUnit(SimUnit):
    """A fleet unit pressed by hand; `recorder` shows its LEDs, buzzer and commands."""

    def __init__(
        self, fleet: Fleet, config: unit_config.PiUnitConfig, kind: str, rng: random.Random
    ) -> None:
        self.keys = status_keys(config.core.buttons)
        self.recorder = Recorder(led_names(config.core.buttons))
        self.holds: dict[str, tuple[int, int, str]] = {}  # pin -> (since tick, ms, what)
        self.parked = False
        self.gps_name = "simulated, on patrol"
        self._source: GpsSource | None = None  # a real receiver instead of the simulated one
        self._source_stop = threading.Event()
        self._source_reader: threading.Thread | None = None
        self.changed: Callable[[], None] = lambda: None  # the view: an LED or buzzer changed
        self._following = False
        super().__init__(fleet, config, kind, rng)

    def park(self) -> None:
        self.parked = True
        self.gps_name = "simulated, parked"
        self.vehicle.park()

    def use_gps(self, source: GpsSource, url: str) -> None:
        """Fixes from an opened receiver (gpsd, serial NMEA), read on a thread of their own."""
        self.park()
        self.gps_name = url
        self._source = source
        self._source_reader = threading.Thread(
            target=read_fixes, args=(source, self._post_fix, self._source_stop), daemon=True
        )
        self._source_reader.start()

    def _post_fix(self, kind: str, fix: Fix) -> None:  # on the reader's thread
        self.fleet.loop.call_soon_threadsafe(self._on_source_fix, fix)

    def _on_source_fix(self, fix: Fix) -> None:
        if self.tunnel is None:  # the tunnel key hides the receiver's fixes
            self.execute(self.core.on_fix(fix, self.fleet.clock.ticks()))

    def observe_gps(self) -> Fix | None:
        if self._source is None:
            return super().observe_gps()
        return Fix(mode=MODE_NO_FIX) if self.tunnel is not None else None

    def close_gps(self) -> None:
        if self._source is not None:
            self._source_stop.set()
            close_gps(self._source, self._source_reader)

    def execute(self, actions: list[Any]) -> None:
        self.recorder.actions(actions, self.fleet.clock.ticks())
        super().execute(actions)
        if any(action.kind in (LED, BUZZER) for action in actions):
            self.changed()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.recorder.command(message.topic, bytes(message.payload), self.core)
        super()._on_message(client, userdata, message)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        broker = self.config.broker
        if reason.is_failure:
            self.recorder.note(f"broker {broker.host}:{broker.port} refused: {reason}")
        else:
            self.recorder.note(f"link up: {broker.host}:{broker.port} as {broker.username}")
        super()._on_connect(client, userdata, flags, reason, props)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.recorder.note(f"link down: {reason}")
        super()._on_disconnect(client, userdata, flags, reason, props)

    def press(self, action: str, hold_s: float = PRESS_S) -> None:
        """Press a button unless it is still held; the vehicle goes where the rider would."""
        pin = self.pin_for(action)
        if pin is None:
            return
        what = "SOS" if action == SOS else action.replace("_", " ")
        if pin in self.holds:  # a new press needs the button let go first, as on the unit
            self.recorder.note(f"the {self.holds[pin][2]} button is still held: wait for it")
            return
        self.holds[pin] = (self.fleet.clock.ticks(), round(hold_s * 1000), what)
        self.fleet.loop.call_later(hold_s, self.holds.pop, pin, None)
        assignment = self.core.assignment
        if action == status.name_of(status.EN_ROUTE) and assignment is not None:
            self.vehicle.drive_to(assignment.lat, assignment.lon)
        elif action == status.name_of(status.AVAILABLE) and not self.parked:
            self.vehicle.patrol()
        super().press(action, hold_s)
        if not self._following:
            self._following = True
            self._follow_buttons()

    def _follow_buttons(self) -> None:
        """Tick the core while a button settles or is held: a press registers at once.

        The fleet ticks its units once a second, which is plenty for riders the
        behaviour model presses, but a tester would see each press land late.
        """
        self.execute(self.core.on_tick(self.fleet.clock.ticks()))
        if self.holds or self.core.buttons.next_deadline_ms() is not None:
            self.fleet.loop.call_later(BUTTON_TICK_S, self._follow_buttons)
        else:
            self._following = False

    def panel(self) -> Panel:
        now = self.fleet.clock.ticks()
        long = [hold for hold in self.holds.values() if hold[1] > SHOWN_HOLD_MS]
        holding = None if not long else (long[0][2], now - long[0][0], long[0][1])
        return describe(
            self.core, self.recorder, now, self.keys, self.forced_offline, holding=holding
        )


def lamp_line(lamp: Lamp, lit_style: str, label_width: int = 10) -> Text:
    """`[1] ● available  steady    received`: key, LED, label, how it looks, what it means."""
    line = Text()
    line.append(f"[{lamp.key}] " if lamp.key else "    ", style="bold")
    line.append("● " if lamp.lit else "○ ", style=lit_style if lamp.lit else "dim")
    line.append(lamp.label.ljust(label_width))
    line.append(f" {lamp.looks:<9}", style="italic" if lamp.pattern != "off" else "dim")
    line.append(f" {lamp.meaning}")
    return line


def buttons_text(panel: Panel, unit: HandUnit) -> Text:
    text = Text()
    for lamp in panel.buttons:
        text.append_text(lamp_line(lamp, LIT_STATUS))
        text.append("\n")
    text.append_text(lamp_line(panel.sos, LIT["sos"]))
    sos_s, cancel_s = unit.hold_s("sos_hold_ms"), unit.hold_s("sos_cancel_hold_ms")
    text.append(f"\n    [{SOS_KEY}] raise: hold {sos_s:.1f} s   ")
    text.append(f"[{CANCEL_KEY}] cancel: hold {cancel_s:.1f} s\n")
    text.append_text(lamp_line(panel.gps, LIT["gps"]))
    text.append("\n")
    text.append_text(lamp_line(panel.link, LIT["link"]))
    text.append("\n    buzzer  ")
    text.append("♪ " if panel.buzzing else "  ", style="bold yellow")
    sounding = panel.buzzer.startswith("sounding")
    text.append(panel.buzzer, style="bold yellow" if sounding else "")
    if panel.holding:
        text.append(f"\n    {panel.holding}", style="bold reverse")
    return text


def unit_text(panel: Panel) -> Text:
    text = Text()  # the link and the SOS are beside their LEDs
    for name, value in (
        ("status", panel.status),
        ("assignment", panel.assignment),
        ("position", panel.position),
        ("outbox", f"{panel.outbox} waiting"),
    ):
        text.append(f"{name:<10} ", style="bold")
        text.append(f"{value}\n")
    text.rstrip()
    return text


class UnitView(App[None]):
    """The unit's buttons, LEDs and buzzer, its state, and the commands it receives."""

    TITLE = "balise sim unit"
    # Side by side where the terminal is wide enough, else the unit's state under the buttons.
    # A class variable of App's, which textual annotates in a way mypy refuses: none here.
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012
        (0, "-narrow"),
        (106, "-wide"),
    ]
    CSS = """
    #top { height: auto; }
    #buttons { width: 66; height: auto; border: round $accent; padding: 0 1; }
    #unit { width: 1fr; height: auto; border: round $accent; padding: 0 1; }
    Screen.-narrow #top { layout: vertical; }
    Screen.-narrow #buttons { width: 1fr; }
    #log { height: 1fr; border: round $accent; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(str(n), f"status('{n}')", show=False) for n in range(1, 10)),
        Binding(SOS_KEY, "sos", "raise SOS (long press)"),
        Binding(CANCEL_KEY, "cancel_sos", "cancel SOS (long press)"),
        Binding("t", "tunnel", "tunnel on/off"),
        Binding("d", "dead_zone", "dead zone on/off"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, unit: HandUnit) -> None:
        super().__init__()
        self.unit = unit
        self.shown: Panel = unit.panel()  # what the screen shows now
        self.history: deque[Panel] = deque(maxlen=HISTORY)  # what it showed, oldest first
        self._logged = 0
        self.buttons = Static(id="buttons")
        self.state = Static(id="unit")
        self.log_view = RichLog(id="log", wrap=True)

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield self.buttons
            yield self.state
        yield self.log_view
        yield Footer()

    def on_mount(self) -> None:
        config = self.unit.config
        kind = self.unit.vehicle.kind
        self.sub_title = f"{self.unit.id} ({kind})"
        self.buttons.border_title = f"{self.unit.id} · {kind} · buttons"
        self.state.border_title = f"unit · GPS {self.unit.gps_name}"
        broker = f"{config.broker.host}:{config.broker.port}"
        self.log_view.border_title = f"commands on cmd, from {broker}"
        self.show()
        self.unit.changed = self.show
        self.set_interval(REFRESH_S, self.show)

    def on_unmount(self) -> None:
        self.unit.changed = lambda: None

    def show(self) -> None:
        if not self.buttons.is_mounted:  # the app is closing: a last timer tick, a last PUBACK
            return
        panel = self.unit.panel()
        self.buttons.update(buttons_text(panel, self.unit))
        self.state.update(unit_text(panel))
        lines = list(self.unit.recorder.log)
        total = self.unit.recorder.noted
        for line in lines[len(lines) - min(len(lines), total - self._logged) :]:
            self.log_view.write(line)
        self._logged = total
        if panel != self.shown:
            self.history.append(panel)
        self.shown = panel

    def action_status(self, key: str) -> None:
        pin = self.unit.keys.get(key)
        if pin is not None:
            self.unit.press(self.unit.config.core.buttons[pin])

    def action_sos(self) -> None:
        self.unit.raise_sos()

    def action_cancel_sos(self) -> None:
        self.unit.cancel_sos()

    def action_tunnel(self) -> None:
        if self.unit.tunnel is None:
            self.unit.lose_gps()
            self.unit.recorder.note("entered a tunnel: no GPS fix (t to leave)")
        else:
            self.unit.regain_gps()
            self.unit.recorder.note("out of the tunnel")

    def action_dead_zone(self) -> None:
        if self.unit.forced_offline:
            self.unit.come_online()
            self.unit.recorder.note("out of the dead zone: reconnecting")
        else:
            self.unit.go_offline()
            self.unit.recorder.note("entered a dead zone: the link drops with no goodbye")


class RecorderLog(logging.Handler):
    """Log records into the view's log: a terminal app cannot have stderr written over it."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(logging.WARNING)
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        self.recorder.note(f"{record.levelname.lower()}: {record.getMessage()}")


@contextlib.asynccontextmanager
async def running_unit(options: FleetOptions, gps: str = "drive") -> AsyncIterator[HandUnit]:
    """The unit of `options.unit_ids` running on this loop; signed off on exit.

    `gps`: "drive" (the simulated vehicle patrols), "park" (it stands still), or the
    URL of a receiver (firmware/drivers/gps.py), opened here: ConfigError or GpsError if
    it cannot be.
    """
    fleet = Fleet(options, asyncio.get_running_loop(), unit_class=HandUnit)
    unit = fleet.units[0]
    assert isinstance(unit, HandUnit)
    if gps == "park":
        unit.park()
    elif gps != "drive":
        unit.use_gps(open_gps(gps), gps)
    task = asyncio.create_task(fleet.run(), name=f"unit {unit.id}")
    try:
        yield unit
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        unit.close_gps()


async def run_view(options: FleetOptions, gps: str) -> None:
    async with running_unit(options, gps) as unit:
        handler = RecorderLog(unit.recorder)
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            await UnitView(unit).run_async()
        finally:
            root.removeHandler(handler)
