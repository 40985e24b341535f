"""The Pi runtime as a real process: `python -m balise unit` against a real mosquitto, GPS
on a pseudo-terminal at 1 Hz, its RSS and CPU time read from /proc while it runs, beside
idle interpreters started at the same moment as baselines.

The deployment is provisioned as tests/conftest.py does it (`balise provision` into a
temporary directory for a free port of 127.0.0.1), and the broker started from its
mosquitto.conf. The unit reaches the broker through a relay that counts the bytes each way
(TLS records as they cross TCP), and a subscriber with the gateway's credentials counts
what arrives, so a unit that silently stopped reporting cannot pass for a frugal one.
Linux only (/proc). Imports paho-mqtt, simulators.nmea and bench.drives.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import tty
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.drives import Sample
from firmware.core.fix import Fix
from simulators import processes
from simulators.nmea import sentences

ROOT = Path(__file__).resolve().parents[1]
UNIT_ID = "KEN-M01"
HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
RELAY_BUFFER_BYTES = 65536

# What `python -m balise unit` imports, in layers: each baseline idles with one of them.
_PROTOCOL = "import paho.mqtt.client, protocol.codec, protocol.predictor, protocol.topics"
_UNIT_MODULES = (
    "import paho.mqtt.client, serial, pynmea2, firmware.pi.main, firmware.pi.runtime,"
    " firmware.pi.vitals, firmware.pi.systemd, firmware.drivers.mqtt_paho,"
    " firmware.drivers.gps, firmware.drivers.gps_serial, firmware.drivers.gpio_fake"
)
_CLI = "import balise.cli; balise.cli.build_parser()\n" + _UNIT_MODULES
BASELINES = (
    ("python, bare (time.sleep)", "pass"),
    ("python + paho-mqtt + protocol, idle", _PROTOCOL),
    ("python + the unit's modules, idle", _UNIT_MODULES),
    ("python + all that `balise unit` imports, idle", _CLI),
)


def gga_rmc(fix: Any) -> str:
    """The GGA and RMC of an epoch: what the footprint was measured with (docs/benchmarks.md)."""
    return "".join(line for line in sentences(fix) if line[3:6] in ("GGA", "RMC"))


def cli_extra_imports() -> list[str]:
    """Top-level packages `balise unit` imports beyond the unit's modules (through the CLI)."""
    code = (
        f"{_UNIT_MODULES}\nimport sys\nbefore = set(sys.modules)\n"
        "import balise.cli; balise.cli.build_parser()\n"
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before"
        " if not m.startswith('_')})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    return done.stdout.split() if done.returncode == 0 else [f"(failed: {done.stderr[-200:]})"]


@dataclass
class ProcSample:
    at_s: float  # time.monotonic()
    cpu_s: float  # user + system
    rss_kb: int
    hwm_kb: int
    threads: int


def read_proc(pid: int) -> ProcSample | None:
    """The process's CPU time and memory now (proc(5)); None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    # Fields after the command name, which may hold spaces: state is field 3.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime, threads = int(fields[11]), int(fields[12]), int(fields[17])

    def kb(name: str) -> int:
        match = re.search(rf"^{name}:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) if match else 0

    return ProcSample(
        time.monotonic(),
        (utime + stime) / CLOCK_TICKS_PER_S,
        kb("VmRSS"),
        kb("VmHWM"),
        threads,
    )


@dataclass
class ProcFigures:
    """One process over the measuring window."""

    name: str
    first: ProcSample
    last: ProcSample

    @property
    def window_s(self) -> float:
        return self.last.at_s - self.first.at_s

    @property
    def cpu_s(self) -> float:
        return self.last.cpu_s - self.first.cpu_s

    @property
    def cpu_s_per_hour(self) -> float:
        return self.cpu_s / self.window_s * 3600 if self.window_s > 0 else float("nan")

    @property
    def core_percent(self) -> float:
        return self.cpu_s / self.window_s * 100 if self.window_s > 0 else float("nan")

    @property
    def startup_cpu_s(self) -> float:
        return self.first.cpu_s

    @property
    def rss_growth_kb(self) -> int:
        return self.last.rss_kb - self.first.rss_kb


@dataclass
class LiveResult:
    unit: ProcFigures
    baselines: list[ProcFigures]
    fixes_written: int
    window_fix_range: tuple[int, int]  # fixes [first, end) written inside the window
    received: Counter[str]  # kind -> messages the gateway-side subscriber got from the unit
    relay_window: tuple[int, int]  # bytes (unit to broker, broker to unit) inside the window
    relay_before_first_fix: tuple[int, int]  # connect: TCP, TLS handshake, CONNECT, ...
    tls: str
    cli_extras: list[str]
    unit_log: str
    unit_exit: int | None
    broker_version: str = ""
    notes: list[str] = field(default_factory=list)


# -- the pieces ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def provision(directory: Path, port: int) -> None:
    """`balise provision`, as tests/conftest.py runs it."""
    argv = ["provision", "--dir", str(directory), "--units", UNIT_ID]
    argv += ["--host", HOST, "--bind", HOST, "--port", str(port)]
    done = subprocess.run(
        [sys.executable, "-m", "balise", *argv], capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"balise provision failed:\n{done.stdout}{done.stderr}")


def mosquitto_program() -> str:
    return processes.mosquitto_program()


@contextlib.contextmanager
def running_broker(directory: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = processes.start_mosquitto(
        directory / "mosquitto.conf", HOST, port, directory / "ca.crt", directory / "mosquitto.log"
    )
    try:
        yield process
    finally:
        processes.stop_process(process)


class CountingRelay:
    """A TCP relay on 127.0.0.1 that counts the bytes each way."""

    def __init__(self, target_port: int) -> None:
        self.target = (HOST, target_port)
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self.up = 0  # client (the unit) to broker
        self.down = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="relay", daemon=True).start()

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.up, self.down

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                return
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink, upward in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, upward), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upward: bool) -> None:
        try:
            while data := source.recv(RELAY_BUFFER_BYTES):
                with self._lock:
                    if upward:
                        self.up += len(data)
                    else:
                        self.down += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class Listener:
    """The gateway's seat: a subscriber to every uplink topic, counting what arrives."""

    def __init__(self, directory: Path, port: int) -> None:
        with (directory / "gateway.toml").open("rb") as stream:
            broker = tomllib.load(stream)["broker"]
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-gateway", protocol=mqtt.MQTTv311
        )
        self.client.tls_set(ca_certs=str(directory / "ca.crt"))
        self.client.username_pw_set(broker["username"], broker["password"])
        self._lock = threading.Lock()
        self.messages: Counter[str] = Counter()
        self.online = threading.Event()
        self._subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(HOST, port, keepalive=60)
        self.client.loop_start()
        if not self._subscribed.wait(START_TIMEOUT_S):
            raise RuntimeError("the gateway-side subscriber could not subscribe")

    def tls(self) -> str:
        sock = self.client.socket()
        if isinstance(sock, ssl.SSLSocket):
            cipher = sock.cipher()
            return f"{sock.version()} {cipher[0] if cipher else ''}".strip()
        return "not TLS"

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, *_args: object) -> None:
        client.subscribe("balise/v1/+/+", qos=1)

    def _on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        parts = message.topic.split("/")
        if len(parts) != 4 or parts[2] != UNIT_ID:
            return
        with self._lock:
            self.messages[parts[3]] += 1
        if parts[3] == "online" and b'"on":true' in message.payload:
            self.online.set()


class Pty:
    """A pseudo-terminal standing in for the receiver's UART; the unit opens `path`."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)

    def write(self, text: str) -> None:
        data = text.encode("ascii")
        while data:
            data = data[os.write(self.master, data) :]

    def close(self) -> None:
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def _relay_config(directory: Path, relay_port: int) -> Path:
    """The unit's own config, pointed at the relay."""
    source = directory / "units" / f"{UNIT_ID}.toml"
    text, count = re.subn(r"(?m)^port = \d+$", f"port = {relay_port}", source.read_text())
    if count != 1:
        raise RuntimeError(f"{source}: expected one 'port = N' line, found {count}")
    target = directory / "units" / f"{UNIT_ID}.bench.toml"
    target.write_text(text)
    target.chmod(0o600)
    return target


def _start_baselines(sleep_s: float) -> list[tuple[str, subprocess.Popen[bytes]]]:
    started = []
    for name, imports in BASELINES:
        code = f"{imports}\nimport time\ntime.sleep({sleep_s:.0f})\n"
        started.append((name, subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)))
    return started


def _stop(process: subprocess.Popen[bytes]) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


# -- the run -------------------------------------------------------------------------------


def run(samples: list[Sample], feed_s: int, warmup_s: int, progress: bool = True) -> LiveResult:
    """Feed `feed_s` one-second epochs of `samples` (their times replaced by now) to a real
    unit; measure from `warmup_s` after the first fix until the last."""
    with tempfile.TemporaryDirectory(prefix="balise-bench-") as tmp:
        directory = Path(tmp) / "deployment"
        port = free_port()
        provision(directory, port)
        with running_broker(directory, port):
            return _run_unit(directory, port, samples, feed_s, warmup_s, progress)


def _run_unit(
    directory: Path,
    port: int,
    samples: list[Sample],
    feed_s: int,
    warmup_s: int,
    progress: bool,
) -> LiveResult:
    relay = CountingRelay(port)
    listener = Listener(directory, port)
    pty = Pty()
    log_path = directory.parent / "unit.log"
    baselines = _start_baselines(feed_s + START_TIMEOUT_S + 60)
    command = [sys.executable, "-m", "balise", "unit", "--config"]
    command += [str(_relay_config(directory, relay.port)), "--fake-gpio"]
    command += ["--gps", f"serial://{pty.path}?baud=9600"]
    command += ["--state-dir", str(directory.parent / "state"), "--log-level", "WARNING"]
    with log_path.open("wb") as log:
        unit = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    exit_code: int | None = None
    try:
        if not listener.online.wait(START_TIMEOUT_S):
            raise RuntimeError(
                "the unit did not come online:\n" + log_path.read_text(errors="replace")
            )
        before_fix = relay.counts()
        pids = [unit.pid] + [process.pid for _, process in baselines]
        written, window, first, last, relay_window = _feed(
            unit, pids, pty, samples, feed_s, warmup_s, progress, relay
        )
        figures = [ProcFigures(f"balise unit (pid {unit.pid})", first[0], last[0])]
        for (name, _), b_first, b_last in zip(baselines, first[1:], last[1:], strict=True):
            figures.append(ProcFigures(name, b_first, b_last))
        tls = listener.tls()
        received = listener.counts()
        exit_code = _stop(unit)
    finally:
        if unit.poll() is None:
            _stop(unit)
        for _, process in baselines:
            _stop(process)
        listener.close()
        relay.close()
        pty.close()
    version = subprocess.run(
        [mosquitto_program(), "-h"], capture_output=True, text=True
    ).stdout.splitlines()[:1]
    return LiveResult(
        unit=figures[0],
        baselines=figures[1:],
        fixes_written=written,
        window_fix_range=window,
        received=received,
        relay_window=relay_window,
        relay_before_first_fix=before_fix,
        tls=tls,
        cli_extras=cli_extra_imports(),
        unit_log=log_path.read_text(errors="replace"),
        unit_exit=exit_code,
        broker_version=version[0] if version else "",
    )


def _feed(
    unit: subprocess.Popen[bytes],
    pids: list[int],
    pty: Pty,
    samples: list[Sample],
    feed_s: int,
    warmup_s: int,
    progress: bool,
    relay: CountingRelay,
) -> tuple[int, tuple[int, int], list[ProcSample], list[ProcSample], tuple[int, int]]:
    """Write one epoch a second, on the second; sample the processes when the window opens
    (after the epoch `warmup_s`) and when it closes (a second after the last epoch)."""
    start_s = int(time.time()) + 1
    first: list[ProcSample] = []
    last: list[ProcSample] = []
    relay_first = (0, 0)
    window_first = 0
    for index in range(min(feed_s, len(samples))):
        epoch_s = start_s + index
        delay = epoch_s + 0.05 - time.time()
        if delay > 0:
            time.sleep(delay)
        fix = Fix(**{**samples[index].fix.values(), "time_ms": epoch_s * 1000})
        pty.write(gga_rmc(fix))
        if unit.poll() is not None:
            raise RuntimeError(f"the unit exited with status {unit.returncode} while running")
        if index == warmup_s:
            first = _sample_all(pids)
            relay_first = relay.counts()
            window_first = index
        if progress and index % 30 == 0:
            print(f"  ... live: {index} s of {feed_s} s", file=sys.stderr, flush=True)
    time.sleep(0.95)  # the last epoch's second
    last = _sample_all(pids)
    relay_last = relay.counts()
    written = min(feed_s, len(samples))
    window = (window_first, written)
    relay_window = (relay_last[0] - relay_first[0], relay_last[1] - relay_first[1])
    return written, window, first, last, relay_window


def _sample_all(pids: list[int]) -> list[ProcSample]:
    samples = []
    for pid in pids:
        sample = read_proc(pid)
        if sample is None:
            raise RuntimeError(f"process {pid} ended during the measurement")
        samples.append(sample)
    return samples
