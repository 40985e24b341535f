"""The TOML files of a deployment: one per unit, the gateway's, and the deployment manifest.

Written with tomli-w, read back with tomllib, so that a second `balise provision` keeps
every password it finds. Pure functions over text; `where` names the file in errors.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from gateway.errors import ProvisionError

DEFAULT_PORT = 8883
DEFAULT_BIND = "0.0.0.0"
DEFAULT_HTTP = "127.0.0.1:8080"

SECRET_HEADER = "# Written by `balise provision`. Holds a password: keep it mode 0600.\n"
MANIFEST_HEADER = "# Written by `balise provision`: the settings a second run keeps.\n"

T = TypeVar("T")


@dataclass(frozen=True)
class BrokerAddress:
    """Where a client finds the broker and the CA that vouches for it."""

    host: str
    port: int
    ca_cert: Path


@dataclass(frozen=True)
class Settings:
    """What the manifest records: the --host names, the listener and the broker's user."""

    hosts: tuple[str, ...]
    port: int
    bind: str
    broker_user: str

    @property
    def connect_host(self) -> str:
        """The host units and the gateway connect to: the first --host, else localhost."""
        return self.hosts[0] if self.hosts else "localhost"


@dataclass(frozen=True)
class GatewayConfig:
    password: str
    db: str
    http: str


def render_unit(
    unit_id: str, broker: BrokerAddress, password: str, existing: str | None, where: str
) -> str:
    """A unit's file: the [unit] id and the [broker] table that firmware/pi/config.py reads.
    Given the `existing` file, every other setting in it (GPS, pins, ...) is kept."""
    updates = {"unit": {"id": unit_id}, "broker": _broker_table(broker, unit_id, password)}
    return _merge(existing, updates, where)


def read_unit_password(text: str, unit_id: str, where: str) -> str:
    data = _load(text, where)
    broker = _get(data, "broker", dict, where)
    if _get(_get(data, "unit", dict, where), "id", str, where) != unit_id:
        raise ProvisionError(f"{where}: unit.id is not {unit_id!r}")
    if _get(broker, "username", str, where) != unit_id:
        raise ProvisionError(f"{where}: broker.username is not {unit_id!r}")
    return _get(broker, "password", str, where)


def render_gateway(
    broker: BrokerAddress,
    username: str,
    config: GatewayConfig,
    existing: str | None,
    where: str,
    fleet: dict[str, str] | None = None,
) -> str:
    """The gateway's file; given the `existing` file, every other setting in it is kept.
    `fleet` (unit id -> vehicle type) is added to its [fleet] table."""
    updates: dict[str, Any] = {
        "db": config.db,
        "http": config.http,
        "broker": _broker_table(broker, username, config.password),
    }
    if fleet:
        updates["fleet"] = fleet
    return _merge(existing, updates, where)


def read_gateway(text: str, where: str) -> GatewayConfig:
    data = _load(text, where)
    broker = _get(data, "broker", dict, where)
    return GatewayConfig(
        password=_get(broker, "password", str, where),
        db=_get(data, "db", str, where),
        http=_get(data, "http", str, where),
    )


def render_manifest(settings: Settings) -> str:
    data = {
        "hosts": list(settings.hosts),
        "port": settings.port,
        "bind": settings.bind,
        "broker_user": settings.broker_user,
    }
    return MANIFEST_HEADER + tomli_w.dumps(data)


def read_manifest(text: str, where: str) -> Settings:
    data = _load(text, where)
    hosts = _get(data, "hosts", list, where)
    if not all(isinstance(host, str) for host in hosts):
        raise ProvisionError(f"{where}: hosts must be a list of strings")
    return Settings(
        hosts=tuple(hosts),
        port=_get(data, "port", int, where),
        bind=_get(data, "bind", str, where),
        broker_user=_get(data, "broker_user", str, where),
    )


def _broker_table(broker: BrokerAddress, username: str, password: str) -> dict[str, Any]:
    return {
        "host": broker.host,
        "port": broker.port,
        "ca_file": str(broker.ca_cert),
        "username": username,
        "password": password,
    }


def _merge(existing: str | None, updates: dict[str, Any], where: str) -> str:
    """`updates` written over the `existing` file's values, table by table, other keys kept.
    A file that already holds every update is returned as it is, comments and all."""
    data = {} if existing is None else _load(existing, where)
    merged = dict(data)
    for key, value in updates.items():
        old = data.get(key)
        merged[key] = (
            {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
        )
    if existing is not None and merged == data:
        return existing
    return SECRET_HEADER + tomli_w.dumps(merged)


def _load(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProvisionError(f"{where} is not valid TOML: {exc}") from exc


def _get(table: dict[str, Any], key: str, kind: type[T], where: str) -> T:
    value = table.get(key)
    if not isinstance(value, kind):
        raise ProvisionError(f"{where}: {key!r} is missing or not a {kind.__name__}")
    return value
