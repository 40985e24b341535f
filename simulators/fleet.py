"""A fleet of simulated units in one asyncio process: `balise sim fleet`.

Each unit is the real firmware core (firmware/core/unit.py) with simulated
drivers: a vehicle driving the streets of simulators/world.py, a GPS receiver
with realistic error (simulators/gps_error.py), buttons pressed by a behaviour
model, and its own MQTT session with its own credentials from the deployment
written by `balise provision`. Thousands of sessions in one process cannot
each have threads, so every paho-mqtt client runs on the asyncio loop through
paho's external-loop hooks (its sockets are registered with the loop's
reader/writer callbacks; `loop_misc` runs the keepalive once a second).

Behaviour: a unit reports available and patrols. When the command room assigns
it to an incident the rider presses "en route" after a few seconds, drives
there, presses "on scene", stays a while, then "available" and patrols again.
Now and then a rider raises an SOS; once a dispatcher has acknowledged it,
the rider cancels it with a long press. Dead zones drop a unit's link while
it is inside them (the unit keeps its outbox and sends the backlog after);
tunnels take its GPS fix away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import socket
import ssl
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paho.mqtt import client as mqtt

from firmware.core.clock import MonotonicClock
from firmware.core.config import SOS
from firmware.core.fix import Fix
from firmware.core.outbox import Outbox
from firmware.core.seqstore import SequenceStore
from firmware.core.storage import FileStorage, MemoryStorage
from firmware.core.unit import BUZZER, LED, MEASURE_HEALTH, PUBLISH, Action, Unit
from firmware.pi import config as unit_config
from protocol import status, topics
from simulators.errors import SimulatorError
from simulators.gps_error import GpsReceiver
from simulators.world import KENITRA, StreetMap, Vehicle, Zone

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
RECONNECT_MIN_S, RECONNECT_MAX_S = 1.0, 20.0
PRESS_S = 0.15  # a gloved press
HOLD_MARGIN_S = 0.3  # a long press lasts a little longer than the unit needs
KEEPALIVE_CHECK_S = 5  # how often paho's loop_misc runs for a unit (its keepalive is 30 s)
SLOTS_PER_S = 20  # the fleet's clock wakes this often and steps the units due in that slot


@dataclass
class FleetStats:
    published: int = 0
    acknowledged: int = 0  # PUBACKs
    connects: int = 0
    commands: int = 0
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        return self.published / max(1e-9, time.monotonic() - self.started)


@dataclass
class FleetOptions:
    deployment: Path
    units: int
    seed: int = 0
    center: tuple[float, float] = KENITRA
    sos_per_hour: float = 0.0  # per unit
    on_scene_s: tuple[float, float] = (60.0, 180.0)
    dead_zones: Sequence[Zone] = ()
    tunnels: Sequence[Zone] = ()
    latency_s: float = 0.0
    connect_spread_s: float = 5.0
    unit_ids: Sequence[str] = ()  # these units of the deployment (default: the first `units`)
    rider: bool = True  # False: no behaviour model; a tester presses the buttons by hand
    # Each unit's outbox journal and sequence files in storage_dir/<unit id>/ (the Pi's
    # FileStorage), so that they survive a power_cut(); None: in memory.
    storage_dir: Path | None = None
    # Builds each unit's outbox (unit id, storage): a scenario's hook to see every record.
    outbox_factory: Callable[[str, Any], Outbox] = Outbox
    first_unit: int = 0  # where in the deployment's sorted units this fleet's begin


class SimUnit:
    """One unit: the real core, a vehicle, a GPS receiver, a paho session on the loop."""

    def __init__(
        self, fleet: Fleet, config: unit_config.PiUnitConfig, kind: str, rng: random.Random
    ) -> None:
        self.fleet = fleet
        self.id = config.unit_id
        self.config = config
        self.rng = rng
        self.powered = True  # False between power_cut() and reboot()
        self._boot_core()
        self.vehicle = Vehicle(kind, fleet.streets, rng)
        self.vehicle.patrol()
        self.gps = GpsReceiver(rng, outages=fleet.options.tunnels)
        self.leds: dict[str, str] = {}
        self.buzzer = ""
        self.connected = False
        self.linked = True  # False inside a dead zone
        self.forced_offline = False  # a scenario took the link away, wherever the unit is
        self.tunnel: Zone | None = None  # a scenario took the GPS away, wherever the unit is
        self.tokens: dict[int, int] = {}
        self.mission = "patrol"
        self.mission_until = 0.0
        self.accepted_incident: str | None = None
        self.sos_acknowledged_at: float | None = None
        self._writer: Any = None  # the socket, while the loop watches it for room to write
        self.client = self._client()
        self._reconnect: asyncio.TimerHandle | None = None
        self._attempt = 0
        self.steps = 0  # simulated seconds: steps / wall seconds is the real-time factor
        self.owed_s = 0  # seconds a late fleet skipped: the next step covers them
        self.lag_s = self.lag_max_s = 0.0  # how late the latest / the latest-ever second ran
        self.connected_at: float | None = None  # monotonic time of the latest CONNACK

    def _boot_core(self) -> None:
        """The core with what survives on its storage (nothing, in memory, at the first boot)."""
        directory = self.fleet.options.storage_dir
        self.storage: Any = (
            MemoryStorage() if directory is None else FileStorage(str(directory / self.id))
        )
        self.core = Unit(
            self.id,
            self.config.core,
            SequenceStore(self.storage),
            self.fleet.options.outbox_factory(self.id, self.storage),
            storage=self.storage,
        )

    # -- MQTT on the asyncio loop ------------------------------------------------------

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        broker = self.config.broker
        client.username_pw_set(broker.username, broker.password)
        client.tls_set_context(self.fleet.ssl_context(broker.ca_file))
        loop = self.fleet.loop

        def opened(c: Any, u: Any, sock: Any) -> None:
            loop.add_reader(sock, c.loop_read)

        def closed(c: Any, u: Any, sock: Any) -> None:
            loop.remove_reader(sock)

        def wants_write(c: Any, u: Any, sock: Any) -> None:
            self.fleet.flush_soon(self)

        def written(c: Any, u: Any, sock: Any) -> None:
            if self._writer is not None:
                loop.remove_writer(self._writer)
                self._writer = None

        client.on_socket_open = opened
        client.on_socket_close = closed
        client.on_socket_register_write = wants_write
        client.on_socket_unregister_write = written
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def flush(self) -> None:
        """Write what paho queued; only a socket that is full is left to the loop to watch."""
        client = self.client
        client.loop_write()
        if self._writer is None and client.want_write():
            sock = client.socket()
            if sock is not None:
                self._writer = sock
                self.fleet.loop.add_writer(sock, client.loop_write)

    def connect(self) -> None:
        self._reconnect = None
        if not self.linked or self.fleet.stopping:
            return
        tick = self.fleet.clock.ticks()
        will_topic, will_payload = self.core.will(tick)
        self.client.will_set(will_topic, will_payload, qos=1, retain=True)
        broker = self.config.broker
        try:
            self.client.connect(broker.host, broker.port, keepalive=KEEPALIVE_S)
        except (OSError, ssl.SSLError) as exc:
            log.debug("%s: cannot connect: %s", self.id, exc)
            self._schedule_reconnect()

    def _schedule_reconnect(self) -> None:
        if self._reconnect is not None or self.fleet.stopping:
            return
        self._attempt += 1
        ceiling = min(RECONNECT_MAX_S, RECONNECT_MIN_S * 2 ** min(self._attempt, 8))
        self._reconnect = self.fleet.loop.call_later(
            self.rng.uniform(0.5, 1.0) * ceiling, self.connect
        )

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("%s: broker refused: %s", self.id, reason)
            return
        self._attempt = 0
        self.connected = True
        self.connected_at = time.monotonic()
        self.fleet.stats.connects += 1
        client.subscribe(topics.cmd_topic(self.id), qos=1)
        self.execute(self.core.on_link(True, self.fleet.clock.ticks()))

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.connected = False
        self.execute(self.core.on_link(False, self.fleet.clock.ticks()))
        if not self.fleet.stopping:
            self._schedule_reconnect()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.fleet.stats.acknowledged += 1
        token = self.tokens.pop(mid, None)
        if token is not None:
            self.execute(self.core.on_puback(token, self.fleet.clock.ticks()))

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.fleet.stats.commands += 1
        tick = self.fleet.clock.ticks()
        self.execute(self.core.on_downlink(message.topic, bytes(message.payload), tick))

    def drop_link(self) -> None:
        """A dead zone: the radio link goes, with no goodbye (the broker fires the will)."""
        self.linked = False
        sock: Any = self.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def power_cut(self) -> None:
        """The unit dies: no sign-off, no DISCONNECT; its socket closes as a dead process's does
        (the broker fires the will). RAM is gone; only what its storage holds survives."""
        self.powered = False
        if self._reconnect is not None:
            self._reconnect.cancel()
            self._reconnect = None
        client = self.client
        client.on_connect = client.on_disconnect = None
        client.on_publish = client.on_message = None
        self.connected = False
        self.tokens = {}
        sock: Any = client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def reboot(self) -> None:
        """Power back: a new core on the same storage, a new session; the rider presses nothing."""
        self.powered = True
        self._attempt = 0
        self.leds, self.buzzer = {}, ""
        self._boot_core()
        self.client = self._client()
        self.start(fresh=False)  # the fleet's clock steps it again from its next slot

    def restore_link(self) -> None:
        self.linked = True
        self._attempt = 0
        if not self.connected and self._reconnect is None:
            self._schedule_reconnect()

    # -- the core's actions ----------------------------------------------------------

    def execute(self, actions: list[Action]) -> None:
        if not self.powered:
            return
        for action in actions:
            if action.kind == PUBLISH:
                if self.fleet.options.latency_s > 0:
                    self.fleet.loop.call_later(self.fleet.options.latency_s, self._publish, action)
                else:
                    self._publish(action)
            elif action.kind == LED:
                self.leds[action.name] = action.pattern
            elif action.kind == BUZZER:
                self.buzzer = action.pattern
            elif action.kind == MEASURE_HEALTH:
                supply = round(12.4 + self.rng.gauss(0, 0.15), 2)
                tick = self.fleet.clock.ticks()
                self.execute(
                    self.core.on_health(tick, cpu_temp_c=48.0, disk_free_mb=900, supply_v=supply)
                )

    def _publish(self, action: Action) -> None:
        if not self.powered:
            return
        info = self.client.publish(
            action.topic, action.payload, qos=action.qos, retain=action.retain
        )
        self.fleet.stats.published += 1
        if action.token is not None:
            self.tokens[info.mid] = action.token

    # -- the rider -------------------------------------------------------------------

    def press(self, action: str, hold_s: float = PRESS_S) -> None:
        pin = self.pin_for(action)
        if pin is None:
            return
        pressed, released = (0, 1) if self.config.core.active_low else (1, 0)
        self.execute(self.core.on_button(pin, pressed, self.fleet.clock.ticks()))
        core = self.core

        def release() -> None:
            if self.powered and core is self.core:  # not on a unit that died meanwhile
                self.execute(core.on_button(pin, released, self.fleet.clock.ticks()))

        self.fleet.loop.call_later(hold_s, release)

    def pin_for(self, action: str) -> str | None:
        """The button for a status name or "sos" (a status button held long, without one)."""
        core = self.config.core
        pin: str | None = core.pin_for(action)
        return core.sos_hold_button if pin is None and action == SOS else pin

    def hold_s(self, setting: str) -> float:
        """How long a hand holds for `sos_hold_ms` or `sos_cancel_hold_ms`: a little longer."""
        # UnitConfig sets its numbers in a loop, out of mypy's sight.
        return float(getattr(self.config.core, setting)) / 1000 + HOLD_MARGIN_S

    def raise_sos(self) -> None:
        """A long press of the SOS button (or of the status button that raises one)."""
        self.press(SOS, self.hold_s("sos_hold_ms"))

    def cancel_sos(self) -> None:
        """A new press of the SOS button, held for the cancel time."""
        self.press(SOS, self.hold_s("sos_cancel_hold_ms"))

    def lose_gps(self) -> None:
        """A tunnel wherever the unit is now: no fix until regain_gps()."""
        if self.tunnel is None:
            self.tunnel = Zone(self.vehicle.lat, self.vehicle.lon, 10_000, "tunnel")
            self.gps.outages.append(self.tunnel)

    def regain_gps(self) -> None:
        if self.tunnel is not None:
            self.gps.outages.remove(self.tunnel)
            self.tunnel = None

    def go_offline(self) -> None:
        """The link goes wherever the unit is, with no goodbye, until come_online()."""
        self.forced_offline = True
        self.drop_link()

    def come_online(self) -> None:
        self.forced_offline = False
        self.restore_link()

    def behave(self, now: float) -> None:
        core = self.core
        alarm = getattr(core, "alarm", None)
        if alarm is not None:
            if self.leds.get("sos") == "on" and self.sos_acknowledged_at is None:
                self.sos_acknowledged_at = now  # a person has it: the rider cancels soon
            if self.sos_acknowledged_at is not None and now - self.sos_acknowledged_at > 20:
                self.cancel_sos()
                self.sos_acknowledged_at = now + 60  # do not hold it again at once
            return
        self.sos_acknowledged_at = None
        rate = self.fleet.options.sos_per_hour / 3600
        if self.mission == "patrol" and rate and self.rng.random() < rate:
            self.press("sos")
            return
        assignment = core.assignment
        if assignment is not None and self.mission != "to_incident" and now >= self.mission_until:
            if self.mission != "deciding":
                self.mission, self.mission_until = "deciding", now + self.rng.uniform(2, 6)
                return
            self.press(status.name_of(status.EN_ROUTE))
            self.vehicle.drive_to(assignment.lat, assignment.lon)
            self.mission, self.accepted_incident = "to_incident", assignment.incident
        elif self.mission == "to_incident" and self.vehicle.arrived:
            self.press(status.name_of(status.ON_SCENE))
            self.mission = "on_scene"
            self.mission_until = now + self.rng.uniform(*self.fleet.options.on_scene_s)
        elif self.mission == "on_scene" and now >= self.mission_until:
            self.press(status.name_of(status.AVAILABLE))
            self.vehicle.patrol()
            self.mission = "patrol"

    def start(self, fresh: bool = True) -> None:
        """Power on: the core boots, the link comes up, the rider reports available (not after
        a reboot, and not without the behaviour model: a tester presses by hand)."""
        self.execute(self.core.start(self.fleet.clock.ticks(), int(time.time() * 1000)))
        self.connect()
        if fresh and self.fleet.options.rider:
            self.press(status.name_of(status.AVAILABLE))

    def second(self) -> None:
        self.steps += 1
        now = time.monotonic()
        elapsed_s, self.owed_s = 1.0 + self.owed_s, 0  # owed: seconds the fleet skipped
        self.vehicle.step(elapsed_s)
        inside = self.forced_offline or any(
            z.contains(self.vehicle.lat, self.vehicle.lon) for z in self.fleet.options.dead_zones
        )
        if inside and self.linked:
            self.drop_link()
        elif not inside and not self.linked:
            self.restore_link()
        tick = self.fleet.clock.ticks()
        fix = self.observe_gps()
        if fix is not None:
            self.execute(self.core.on_fix(fix, tick))
        self.execute(self.core.on_tick(tick))
        if self.fleet.options.rider:
            self.behave(now)
        # paho's keepalive (a PINGREQ after KEEPALIVE_S of silence) needs no finer check.
        if self.connected and self.steps % KEEPALIVE_CHECK_S == 0:
            self.client.loop_misc()

    def observe_gps(self) -> Fix | None:
        """This second's fix from the simulated receiver (None: the receiver said nothing)."""
        return self.gps.observe(self.vehicle, int(time.time() * 1000))

    def stop(self) -> None:
        if not self.powered:
            return
        if self._reconnect is not None:
            self._reconnect.cancel()
        if self.connected:
            self.execute(self.core.sign_off(self.fleet.clock.ticks()))
            self.client.disconnect()


class Fleet:
    def __init__(
        self,
        options: FleetOptions,
        loop: asyncio.AbstractEventLoop,
        unit_class: type[SimUnit] = SimUnit,
    ) -> None:
        self.options = options
        self.loop = loop
        self.clock = MonotonicClock()
        self.stats = FleetStats()
        self.stopping = False
        self.streets = StreetMap.generate(options.center, seed=options.seed)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._to_flush: list[SimUnit] = []
        configs = load_units(
            options.deployment, options.units, options.unit_ids, options.first_unit
        )
        types = _vehicle_types(options.deployment)
        self.units = [
            unit_class(
                self,
                config,
                types.get(config.unit_id) or _guess_type(config.unit_id),
                random.Random(f"{options.seed}/{config.unit_id}"),
            )
            for config in configs
        ]

    def ssl_context(self, ca_file: str) -> ssl.SSLContext:
        """One TLS context per CA, shared by every session (a context per client costs ~1 MB)."""
        context = self._contexts.get(ca_file)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise SimulatorError(f"{ca_file}: cannot load the CA certificate: {exc}") from exc
            self._contexts[ca_file] = context
        return context

    def unit(self, unit_id: str) -> SimUnit:
        return next(u for u in self.units if u.id == unit_id)

    async def run(
        self, duration_s: float | None = None, progress: Callable[[Fleet], None] | None = None
    ) -> None:
        clock = asyncio.create_task(self._clock(), name="fleet clock")
        started = time.monotonic()
        try:
            while duration_s is None or time.monotonic() - started < duration_s:
                await asyncio.sleep(1.0)
                if clock.done():
                    clock.result()  # a crash of the clock is the fleet's: raise it here
                if progress is not None:
                    progress(self)
        finally:
            self.stopping = True
            for unit in self.units:
                unit.stop()
            await asyncio.sleep(0.3)  # the DISCONNECTs go out
            clock.cancel()
            await asyncio.gather(clock, return_exceptions=True)

    async def _clock(self) -> None:
        """Step every unit once a second, each at its own phase, on one timer for the fleet.

        A timer per unit costs a Task, a Future and a heap entry per unit-second; here the
        units are started over `connect_spread_s` and kept in SLOTS_PER_S slots of the
        second; one wake-up steps a slot, and each unit's lag is how late its step ran.
        A fleet that falls a whole second behind skips it (its `steps` fall behind the wall
        clock: the real-time factor drops below 1) instead of catching up with a burst of
        steps, which would make the units report more (their positions jump) and fall
        further behind.
        """
        spread = self.options.connect_spread_s
        count = len(self.units)
        starts = [spread * i / max(1, count) for i in range(count)]
        slots: list[list[SimUnit]] = [[] for _ in range(SLOTS_PER_S)]
        origin = time.monotonic()
        started = 0
        slot = 0
        while not self.stopping:
            due = origin + slot / SLOTS_PER_S
            # Even when late, yield once: the sockets' reads and writes run between slots.
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            behind_s = int(time.monotonic() - due)
            if behind_s >= 1:
                # Whole seconds behind: every unit skips them rather than taking a burst of
                # fixes (a receiver gives one a second); its vehicle moves on by as much.
                slot += behind_s * SLOTS_PER_S
                due += behind_s
                for unit in self.units[:started]:
                    unit.owed_s += behind_s
            units = slots[slot % SLOTS_PER_S]
            while started < count and starts[started] <= due - origin:
                unit = self.units[started]
                unit.start()
                units.append(unit)
                started += 1
            for unit in units:
                if not unit.powered:  # power_cut() until reboot()
                    continue
                unit.lag_s = lag = max(0.0, time.monotonic() - due)
                if lag > unit.lag_max_s:
                    unit.lag_max_s = lag
                unit.second()
            slot += 1

    def flush_soon(self, unit: SimUnit) -> None:
        """Write `unit`'s queued packets once this turn of the loop is done, with the others'."""
        self._to_flush.append(unit)
        if len(self._to_flush) == 1:
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        units, self._to_flush = self._to_flush, []
        for unit in units:
            unit.flush()

    @property
    def size(self) -> int:
        return len(self.units)

    def connected(self) -> int:
        return sum(u.connected for u in self.units)

    def backlog(self) -> int:
        return sum(u.core.outbox.depth() for u in self.units)


def unit_files(deployment: Path, count: int, first: int = 0) -> list[Path]:
    """The config files of units first..first+count-1 of the deployment (sorted by id)."""
    files = sorted((deployment / "units").glob("*.toml"))
    if not files:
        raise SimulatorError(f"{deployment}: no units/*.toml: provision the deployment first")
    if first < 0:
        raise SimulatorError(f"--first-unit {first}: at least 0")
    if first + count > len(files):
        asked = f"--units {count}" + (f" from --first-unit {first}" if first else "")
        raise SimulatorError(f"{asked}: the deployment {deployment} has only {len(files)} units")
    return files[first : first + count]


def load_units(
    deployment: Path, count: int, unit_ids: Sequence[str] = (), first: int = 0
) -> list[unit_config.PiUnitConfig]:
    """Units first..first+count-1 of a deployment, or those named in `unit_ids`."""
    if not unit_ids:
        return [unit_config.load(path) for path in unit_files(deployment, count, first)]
    known = {path.stem: path for path in sorted((deployment / "units").glob("*.toml"))}
    missing = [unit_id for unit_id in unit_ids if unit_id not in known]
    if missing:
        raise SimulatorError(
            f"unit {', '.join(missing)}: not in the deployment {deployment} "
            f"(its units: {', '.join(known)})"
        )
    return [unit_config.load(known[unit_id]) for unit_id in unit_ids]


def _vehicle_types(deployment: Path) -> dict[str, str]:
    try:
        fleet = tomllib.loads((deployment / "gateway.toml").read_text()).get("fleet", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {k: v for k, v in fleet.items() if isinstance(v, str)}


def _guess_type(unit_id: str) -> str:
    return "car" if "-C" in unit_id.upper() else "motorcycle"


def progress_line(stream: Any = sys.stderr, processes: int = 1) -> Callable[[Any], None]:
    """A line rewritten each second on a terminal, for a Fleet or a FleetProcesses."""
    last = [0, time.monotonic()]
    where = f" in {processes} processes" if processes > 1 else ""

    def show(fleet: Any) -> None:
        now = time.monotonic()
        rate = (fleet.stats.published - last[0]) / max(1e-9, now - last[1])
        last[0], last[1] = fleet.stats.published, now
        line = (
            f"units {fleet.connected()}/{fleet.size} connected{where}, {rate:.1f} msg/s, "
            f"backlog {fleet.backlog()}"
        )
        if stream.isatty():
            stream.write("\r" + line.ljust(79))
            stream.flush()

    return show


async def run_until_signal(options: FleetOptions, duration_s: float | None) -> Fleet:
    """Run a fleet with a progress line until `duration_s` has passed or SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    fleet = Fleet(options, loop)
    runner = asyncio.create_task(fleet.run(duration_s, progress_line()))
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, runner.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    return fleet
