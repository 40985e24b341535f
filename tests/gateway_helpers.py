"""`balise gateway` as a real process for tests, with its HTTP API on a free port.

`GatewayProcess` starts it on a provisioned deployment (tests/conftest.py's
`broker`), waits until it is connected to the broker and answers HTTP, and
kills it on exit. `Api` is an httpx client that logs in as a browser does
(session cookie + CSRF header) or uses a bearer token.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators import processes
from simulators.errors import SimulatorError
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


class GatewayProcess(processes.GatewayProcess):
    """simulators/processes.py's gateway, started at once; one that does not come up fails."""

    def __init__(
        self, broker: Broker, db: Path, http_port: int | None = None, config: Path | None = None
    ) -> None:
        super().__init__(config or broker.deployment.directory / "gateway.toml", db, http_port)
        try:
            self.start()
        except SimulatorError as exc:
            pytest.fail(str(exc))


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


def stored_seqs(db: Path, unit: str = "KEN-M01", kind: str | None = None) -> list[int]:
    """The seqs stored for `unit` (of one `kind`, or all), in order; the file opened read-only."""
    sql, args = "SELECT seq FROM messages WHERE unit = ?", [unit]
    if kind:
        sql, args = sql + " AND kind = ?", [unit, kind]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return [seq for (seq,) in connection.execute(sql + " ORDER BY seq", args)]


def config_with(broker: Broker, name: str, **ingest: object) -> Path:
    """The deployment's gateway.toml with an `[ingest]` table of `ingest`: gateway-<name>.toml."""
    base = broker.deployment.directory / "gateway.toml"
    table = "".join(f"{key} = {json.dumps(value)}\n" for key, value in ingest.items())
    config = base.with_name(f"gateway-{name}.toml")
    config.write_text(base.read_text().replace("[broker]", f"[ingest]\n{table}\n[broker]"))
    return config


def with_workers(broker: Broker, workers: int) -> Path:
    """The deployment's gateway.toml with `[ingest] bulk_workers = workers`."""
    return config_with(broker, f"{workers}-workers", bulk_workers=workers)
