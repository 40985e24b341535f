"""Helpers for the tests that run a whole unit against the real broker.

- `Uplink`: a subscriber with the gateway's credentials that decodes everything a unit published;
  `Pinger` sends the unit `ping` commands as that subscriber;
- `running_runtime`: the Pi runtime in-process with the real paho link, a fake board and the GPS
  source the test gives;
- `UnitProcess`: `balise unit` as a separate process, which a test can SIGKILL (a power cut);
- `nmea_epoch`, `Roundabout`, `Pty` and `NmeaFeeder`: a moving vehicle's GGA+RMC, written at a
  steady rate into a pseudo-terminal that the unit reads as its serial receiver.

Every wait is bounded; every process started here is stopped by its own context manager.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import tomllib
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from firmware.core.outbox import Outbox
from firmware.core.seqstore import SequenceStore
from firmware.core.storage import FileStorage
from firmware.core.unit import Unit
from firmware.drivers.gpio_fake import FakeBoard
from firmware.drivers.mqtt_paho import Backoff, BrokerSettings, PahoLink
from firmware.pi import config as unit_config
from firmware.pi.runtime import GPS_RETRY_SECONDS, Runtime
from protocol import codec, topics
from protocol.messages import Ping, Position
from tests.mqtt_helpers import Broker, Deployment, Session, connected

ROOT = Path(__file__).resolve().parents[3]
UNIT = "KEN-M01"
WAIT_S = 10.0
STOP_S = 10.0


def wait_until(condition: Callable[[], Any], timeout: float = WAIT_S, what: str = "") -> Any:
    """The first truthy value of `condition()`; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.02)


# ---- the command room's side ----------------------------------------------------------------


class Uplink:
    """What arrived from one unit, decoded; a payload that does not decode fails the test."""

    def __init__(self, session: Session, unit: str = UNIT) -> None:
        self.session = session
        self.unit = unit

    def messages(self, kind: str | None = None) -> list[Any]:
        decoded = []
        for topic, payload in list(self.session.received):
            if topic.startswith(f"{topics.PREFIX}{self.unit}/"):
                message = codec.decode(topic, payload)
                if kind in (None, message.KIND):
                    decoded.append(message)
        return decoded

    def sequenced(self) -> list[Any]:
        """Every message that carries a seq, in arrival order, with batch items taken apart."""
        flat: list[Any] = []
        for message in self.messages():
            flat += message.items if message.KIND == "batch" else [message]
        return flat

    def positions(self) -> list[Position]:
        return [message for message in self.sequenced() if message.KIND == "pos"]

    def signed_off(self) -> bool:
        return any(not message.online for message in self.messages("online"))


class Pinger:
    """The command room asking the unit where it is (a `ping` command) every `period_s`."""

    def __init__(self, session: Session, period_s: float = 0.2, unit: str = UNIT) -> None:
        self.session = session
        self.period_s = period_s
        self.unit = unit
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pinger", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.sent += 1
            ping = Ping(unit=self.unit, cmd_id=self.sent, t_ms=int(time.time() * 1000))
            self.session.publish(topics.cmd_topic(self.unit), codec.encode(ping))

    def __enter__(self) -> Pinger:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(STOP_S)


@contextmanager
def uplink(broker: Broker, client_id: str = "test-gateway") -> Iterator[Uplink]:
    user, password = broker.deployment.gateway_user()
    with connected(
        broker, user, password, client_id=client_id, subscribe=[topics.UPLINK_SUBSCRIPTION]
    ) as session:
        yield Uplink(session)


# ---- the unit in-process ----------------------------------------------------------------------


@contextmanager
def running_runtime(broker: Broker, state_dir: Path, gps: Any, **core: Any) -> Iterator[Runtime]:
    """The Pi runtime on a thread with the real paho link to `broker` and `gps` as its GPS."""
    with running_unit(broker, state_dir, gps=gps, **core) as (runtime, _board):
        yield runtime


@contextmanager
def running_unit(
    broker: Broker, state_dir: Path, gps: Any = None, port: int | None = None, **core: Any
) -> Iterator[tuple[Runtime, FakeBoard]]:
    """As `running_runtime`, with its fake board; `port` reaches the broker another way (a
    proxy that cuts the link)."""
    config = unit_config.load(broker.deployment.directory / "units" / f"{UNIT}.toml")
    settings = BrokerSettings(
        host=config.broker.host,
        port=port or config.broker.port,
        username=config.broker.username,
        password=config.broker.password,
        ca_file=config.broker.ca_file,
        client_id=UNIT,
        cmd_topic=topics.cmd_topic(UNIT),
    )
    storage = FileStorage(str(state_dir))
    unit = Unit(UNIT, core, SequenceStore(storage), Outbox(UNIT, storage))
    runtime = Runtime(unit)
    link = PahoLink(settings, runtime.post, backoff=Backoff(0.1, 0.5))
    board = FakeBoard(on_edge=runtime.on_edge)
    thread = threading.Thread(target=runtime.run, args=(link, board, gps), daemon=True)
    thread.start()
    try:
        yield runtime, board
    finally:
        runtime.stop()
        thread.join(STOP_S)
        # The runtime's GPS reader must be done before the source is closed or reused.
        for reader in [t for t in threading.enumerate() if t.name == "gps"]:
            reader.join(GPS_RETRY_SECONDS + STOP_S)
        assert not thread.is_alive(), "the runtime did not stop"


def settled(runtime: Runtime) -> bool:
    """No event waiting and nothing in the outbox: all the broker was given, it has."""
    return runtime.events.empty() and runtime.unit.outbox.depth() == 0


# ---- the unit as a process ---------------------------------------------------------------------


def write_unit_config(deployment: Deployment, path: Path, port: int, core: dict[str, Any]) -> Path:
    """A copy of the unit's provisioned TOML with the broker at `port` and a [core] table."""
    source = deployment.directory / "units" / f"{UNIT}.toml"
    document = tomllib.loads(source.read_text())
    document["broker"]["port"] = port
    document["broker"]["ca_file"] = str(deployment.ca_cert)
    document["core"] = core
    path.write_text(tomli_w.dumps(document))
    return path


class UnitProcess:
    """`python -m balise unit ...` in its own process group, its output in `log_path`."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "balise", "unit", *args],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = WAIT_S) -> None:
        def logged() -> bool:
            if self.process.poll() is not None and text not in self.log():
                raise AssertionError(f"the unit exited ({self.process.returncode}):\n{self.log()}")
            return text in self.log()

        wait_until(logged, timeout, f"{text!r} in the unit's log")

    def power_cut(self) -> None:
        """SIGKILL: no sign-off, no flush, no finally."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(STOP_S)

    def stop(self) -> int | None:
        """SIGTERM (a clean stop), then SIGKILL to the group if it does not end in time."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            try:
                return self.process.wait(STOP_S)
            except subprocess.TimeoutExpired:
                continue
        return None

    def __enter__(self) -> UnitProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)


# ---- a receiver on a serial line ---------------------------------------------------------------


def nmea(body: str) -> str:
    """`$body*CS\\r\\n`: the checksum is the XOR of the characters between $ and *."""
    checksum = 0
    for char in body:
        checksum ^= ord(char)
    return f"${body}*{checksum:02X}\r\n"


def _degrees_minutes(value: float, width: int, hemispheres: str) -> tuple[str, str]:
    hemisphere = hemispheres[0] if value >= 0 else hemispheres[1]
    minutes_total = round(abs(value) * 60, 4)
    degrees, minutes = divmod(minutes_total, 60)
    return f"{int(degrees):0{width}d}{minutes:07.4f}", hemisphere


MPS_PER_KNOT = 1852 / 3600


def nmea_epoch(when: datetime, lat: float, lon: float, speed_mps: float, course_deg: float) -> str:
    """One receiver epoch: GGA (3D, 9 satellites, HDOP 0.9) then RMC, same UTC time."""
    hhmmss = when.strftime("%H%M%S") + f".{when.microsecond // 10000:02d}"
    lat_text, ns = _degrees_minutes(lat, 2, "NS")
    lon_text, ew = _degrees_minutes(lon, 3, "EW")
    gga = f"GPGGA,{hhmmss},{lat_text},{ns},{lon_text},{ew},1,09,0.9,12.5,M,46.9,M,,"
    knots = speed_mps / MPS_PER_KNOT
    ddmmyy = when.strftime("%d%m%y")
    motion = f"{knots:.2f},{course_deg:.1f}"
    rmc = f"GPRMC,{hhmmss},A,{lat_text},{ns},{lon_text},{ew},{motion},{ddmmyy},,,A"
    return nmea(gga) + nmea(rmc)


class Roundabout:
    """A motorcycle going round a roundabout, with a receiver's metre-level jitter.

    The turning (and the jitter) keep the command room's straight-line extrapolation off by
    more than a metre or so after each epoch, so a unit with threshold_m = 1 reports often.
    """

    METRES_PER_DEGREE = 111_320.0

    def __init__(
        self,
        lat: float = 34.2610,
        lon: float = -6.5802,
        radius_m: float = 15.0,
        speed_mps: float = 8.0,
        jitter_m: float = 1.5,
        seed: int = 19,
    ) -> None:
        self.lat, self.lon = lat, lon
        self.radius_m, self.speed_mps, self.jitter_m = radius_m, speed_mps, jitter_m
        self._rng = random.Random(seed)

    def at(self, elapsed_s: float) -> tuple[float, float, float, float]:
        """(lat, lon, speed_mps, course_deg) `elapsed_s` into the ride."""
        angle = elapsed_s * self.speed_mps / self.radius_m  # counter-clockwise
        east = self.radius_m * math.cos(angle) + self._rng.uniform(-1, 1) * self.jitter_m
        north = self.radius_m * math.sin(angle) + self._rng.uniform(-1, 1) * self.jitter_m
        lat = self.lat + north / self.METRES_PER_DEGREE
        lon = self.lon + east / (self.METRES_PER_DEGREE * math.cos(math.radians(self.lat)))
        course = math.degrees(-angle) % 360
        return lat, lon, self.speed_mps, course


class Pty:
    """A pseudo-terminal: the test writes the master, the unit opens `path` as a serial port.

    The master does not block: what the unit does not read (it is dead, or not started yet)
    fills the terminal's buffer and then is dropped, as a receiver's output is. Writes after
    `close()` are dropped too, so a writer thread never hits a file descriptor reused since.
    """

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo or CR/LF rewriting before pyserial sets it up
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.dropped_bytes = 0
        self._lock = threading.Lock()
        self._closed = False

    def write(self, data: bytes) -> None:
        with self._lock:
            written = 0
            if not self._closed:
                with contextlib.suppress(BlockingIOError):
                    written = os.write(self.master, data)
            self.dropped_bytes += len(data) - written

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self.master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __enter__(self) -> Pty:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NmeaFeeder:
    """Writes the vehicle's epochs, stamped with the current UTC time, at `hz` into a Pty."""

    def __init__(self, vehicle: Roundabout, hz: float = 10.0) -> None:
        self.vehicle = vehicle
        self.period_s = 1.0 / hz
        self.pty: Pty | None = None
        self.epochs = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nmea-feeder", daemon=True)

    @contextmanager
    def feeding(self, pty: Pty) -> Iterator[Pty]:
        """Write into `pty` from the next epoch on, until the block ends (receiver unplugged)."""
        with self._lock:
            self.pty = pty
        try:
            yield pty
        finally:
            with self._lock:
                self.pty = None

    def _run(self) -> None:
        start = time.time()
        while not self._stop.is_set():
            # Epochs on a fixed schedule, so their times differ even when the feeder runs late.
            when = start + self.epochs * self.period_s
            lat, lon, speed, course = self.vehicle.at(when - start)
            text = nmea_epoch(datetime.fromtimestamp(when, UTC), lat, lon, speed, course)
            with self._lock:
                if self.pty is not None:
                    self.pty.write(text.encode("ascii"))
            self.epochs += 1
            self._stop.wait(max(0.0, start + self.epochs * self.period_s - time.time()))

    def __enter__(self) -> NmeaFeeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(STOP_S)
