"""`balise gateway` as a real process for tests, with its HTTP API on a free port.

`GatewayProcess` starts it on a provisioned deployment (tests/conftest.py's
`broker`), waits until it is connected to the broker and answers HTTP, and
kills it on exit. `Api` is an httpx client that logs in as a browser does
(session cookie + CSRF header) or uses a bearer token.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.mqtt_helpers import Broker

WAIT_S = 20.0
PASSWORD = "correct horse battery"


def wait_until(condition: Callable[[], Any], timeout: float = WAIT_S, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def balise(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "balise", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def add_user(config: Path, name: str, role: str, password: str = PASSWORD) -> None:
    result = balise("users", "add", name, "--role", role, "--config", str(config), stdin=password)
    assert result.returncode == 0, result.stderr


def create_token(config: Path, name: str, role: str) -> str:
    result = balise("tokens", "create", name, "--role", role, "--config", str(config))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


class GatewayProcess:
    def __init__(
        self, broker: Broker, db: Path, http_port: int | None = None, config: Path | None = None
    ) -> None:
        self.config = config or broker.deployment.directory / "gateway.toml"
        self.http_port = http_port or free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        argv = ["gateway", "--config", str(self.config), "--db", str(db)]
        argv += ["--http", f"127.0.0.1:{self.http_port}"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "balise", *argv], stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._connected = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._connected.wait(WAIT_S) or not self._answers():
            self.kill()
            pytest.fail("the gateway did not come up:\n" + "".join(self.lines))

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if "connected to" in line:
                self._connected.set()

    def _answers(self) -> bool:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                httpx.get(f"{self.url}/health", timeout=1.0)
                return True
            except httpx.TransportError:
                time.sleep(0.05)
        return False

    def log(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(10)


@contextmanager
def gateway(broker: Broker, db: Path, http_port: int | None = None) -> Iterator[GatewayProcess]:
    process = GatewayProcess(broker, db, http_port)
    try:
        yield process
    finally:
        process.kill()


class Api:
    """The HTTP API as a logged-in console (cookie + CSRF) or a machine (bearer token)."""

    def __init__(self, url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=10.0)
        self.csrf = ""

    def login(self, user: str, password: str = PASSWORD) -> httpx.Response:
        response = self.http.post("/api/login", json={"username": user, "password": password})
        if response.status_code == 200:
            self.csrf = response.json()["csrf"]
        return response

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def post(self, path: str, body: Any = None, csrf: bool = True) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf} if csrf and self.csrf else {}
        return self.http.post(path, json=body, headers=headers)

    def units(self) -> dict[str, dict[str, Any]]:
        response = self.get("/api/units")
        assert response.status_code == 200, response.text
        return {unit["id"]: unit for unit in response.json()}

    def all_live(self, count: int) -> bool:
        """True once `count` units are on the API, each online, placed and available."""
        units = self.units()
        return len(units) == count and all(
            u["online"] and u["position"] and u["status"] == "available" for u in units.values()
        )

    def close(self) -> None:
        self.http.close()
