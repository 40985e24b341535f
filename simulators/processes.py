"""The real mosquitto and the real gateway as child processes.

`balise demo`, `balise sim scenario --start-broker --start-gateway` and the test
suite (tests/conftest.py, tests/gateway_helpers.py) start them with this code:

- `start_mosquitto(conf, host, port, ca_file, log_path)` returns once the broker
  completes a TLS handshake; `BrokerProcess` adds stop, kill -9 and restart on the
  same port and files (its log is appended to, so a restart keeps what came before);
- `GatewayProcess(config, db, http_port)` runs `balise gateway`; `start()` returns
  once it is connected to the broker and answers HTTP; `kill()` is a kill -9,
  `stop()` a SIGTERM; `start()` again restarts it on the same store and port.

Every failure to start raises SimulatorError with the program's own output.
Imports simulators.errors and httpx (and simulators.embedded_broker for amqtt).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from simulators.errors import SimulatorError

HOST = "127.0.0.1"
START_S = 20.0
STOP_S = 10.0
LOG_TAIL_CHARS = 4000
PORT_ATTEMPTS = 3
PORT_TAKEN = "Address already in use"
LANES = ("bulk", "alarm")  # the gateway's MQTT sessions (gateway/mqtt.py)


def free_port(host: str = HOST) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def find_mosquitto() -> str | None:
    # mosquitto lives in /usr/sbin, which is not always on PATH
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")


def mosquitto_program() -> str:
    program = find_mosquitto()
    if program is None:
        raise SimulatorError(
            "mosquitto is not installed: run `make demo` as root (it installs it), "
            "`scripts/system-deps.sh`, or `apt-get install mosquitto`"
            " (`balise demo --broker embedded` runs without it)"
        )
    return program


def accepts_tls(host: str, port: int, ca_file: Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with (
            socket.create_connection((host, port), timeout=1.0) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return True
    except OSError:  # refused while starting; ssl.SSLError is an OSError too
        return False


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return ""


def stop_process(process: subprocess.Popen[bytes] | subprocess.Popen[str] | None) -> None:
    """SIGTERM, then SIGKILL if it has not exited within STOP_S; no error if already gone."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_mosquitto(
    conf: Path, host: str, port: int, ca_file: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    """mosquitto on `conf`, returned once it completes a TLS handshake on host:port."""
    command = [mosquitto_program(), "-c", str(conf)]
    return start_broker(command, "mosquitto", host, port, ca_file, log_path)


def start_broker(
    command: list[str], name: str, host: str, port: int, ca_file: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    """A broker run by `command`, returned once it completes a TLS handshake on host:port."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_S
    while not accepts_tls(host, port, ca_file):
        if process.poll() is not None:
            raise SimulatorError(
                f"{name} exited with status {process.returncode}:\n{_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            stop_process(process)
            raise SimulatorError(
                f"{name} did not accept TLS on {host}:{port} within {START_S:.0f} s:\n"
                + _tail(log_path)
            )
        time.sleep(0.02)
    return process


class BrokerProcess:
    """mosquitto on a provisioned deployment, which can be stopped and started again; with
    `embedded`, the demo's amqtt broker (simulators/embedded_broker.py) instead."""

    def __init__(
        self, deployment: Path, host: str, port: int, log_path: Path, embedded: bool = False
    ) -> None:
        self.deployment = deployment
        self.conf = deployment / "mosquitto.conf"
        self.ca_file = deployment / "ca.crt"
        self.host, self.port, self.log_path = host, port, log_path
        self.embedded = embedded
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not self.embedded:
            self.process = start_mosquitto(
                self.conf, self.host, self.port, self.ca_file, self.log_path
            )
            return
        from simulators import embedded_broker

        command = embedded_broker.command(self.deployment)
        self.process = start_broker(
            command, "amqtt", self.host, self.port, self.ca_file, self.log_path
        )

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its persistent sessions and retained messages first."""
        stop_process(self.process)

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return _tail(self.log_path)


class GatewayProcess:
    """`balise gateway --config CONFIG --db DB --http HOST:PORT` as a child process."""

    def __init__(
        self,
        config: Path,
        db: Path | None,
        http_port: int | None = None,
        log_path: Path | None = None,
        http_host: str = HOST,
    ) -> None:
        self.config = config
        self.db = db  # None: the one gateway.toml names
        self.http_host = http_host
        self._port_chosen = http_port is None  # ours to change if another program takes it
        self.http_port = http_port or free_port()
        self.url = f"http://{http_host}:{self.http_port}"
        self.log_path = log_path
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._connected = threading.Event()

    def start(self) -> None:
        """Start it; return once both its MQTT sessions are subscribed and it answers /health.

        A port it chose itself and that another program took meanwhile (free_port() only
        says it was free a moment ago) is replaced by another, a few times."""
        for _attempt in range(PORT_ATTEMPTS):
            try:
                self._start()
                return
            except SimulatorError as exc:
                if not (self._port_chosen and PORT_TAKEN in str(exc)):
                    raise
                self.http_port = free_port()
                self.url = f"http://{self.http_host}:{self.http_port}"
        self._start()

    def _start(self) -> None:
        argv = ["gateway", "--config", str(self.config), "--http", self.url.removeprefix("http://")]
        argv += [] if self.db is None else ["--db", str(self.db)]
        self._connected = threading.Event()
        self.lines = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "balise", *argv], stderr=subprocess.PIPE, text=True
        )
        threading.Thread(
            target=self._read, args=(self.process, self._connected), daemon=True
        ).start()
        if not self._connected.wait(START_S) or not self._answers():
            self.kill()
            raise SimulatorError("the gateway did not come up:\n" + self.log()[-LOG_TAIL_CHARS:])

    def _read(self, process: subprocess.Popen[str], connected: threading.Event) -> None:
        assert process.stderr is not None
        lanes_up: set[str] = set()  # both MQTT sessions subscribed: connected
        log = self.log_path.open("a") if self.log_path is not None else None
        try:
            for line in process.stderr:
                self.lines.append(line)
                if log is not None:
                    log.write(line)
                    log.flush()
                lanes_up.update(lane for lane in LANES if f"{lane} lane connected to" in line)
                if lanes_up == set(LANES):
                    connected.set()
        finally:
            connected.set()  # it has ended: start() need not wait any longer to find out
            if log is not None:
                log.close()

    def _answers(self) -> bool:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline and self.running():
            try:
                httpx.get(f"{self.url}/health", timeout=1.0)
                return True
            except httpx.TransportError:
                time.sleep(0.05)
        return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        """kill -9: no goodbye, nothing flushed that was not committed."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(STOP_S)

    def stop(self) -> int:
        assert self.process is not None, "the gateway was never started"
        self.process.terminate()
        return self.process.wait(STOP_S)
