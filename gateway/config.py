"""The gateway's configuration file (gateway.toml, written by `balise provision`).

    db = "…/gateway.sqlite"         the store
    http = "127.0.0.1:8080"          the command room's API
    [broker]  host, port, ca_file, username, password
    [ingest]  optional: client_id, shared_group (an MQTT 5 shared subscription),
              max_future_s, heartbeat_s, grace_s, retention_days, bulk_nice,
              bulk_workers, adopt

Every error names the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import GatewayError

MAX_BULK_WORKERS = 4


class ConfigError(GatewayError, ValueError):
    """gateway.toml is missing, unreadable or has a bad value; the message names the key."""


@dataclass(frozen=True)
class BrokerConfig:
    host: str
    port: int
    ca_file: str
    username: str
    password: str


VEHICLE_TYPES = ("motorcycle", "car")
KENITRA = (34.2610, -6.5802)


@dataclass(frozen=True)
class ConsoleConfig:
    """What the dispatcher console's map starts with; no tile URL: markers on a blank map."""

    tile_url: str | None = None
    attribution: str = ""
    center: tuple[float, float] = KENITRA
    zoom: int = 13


@dataclass(frozen=True)
class GatewayConfig:
    broker: BrokerConfig
    db: str
    http_host: str
    http_port: int
    client_id: str = "balise-gateway"
    shared_group: str | None = None
    max_future_s: float = 300.0
    heartbeat_s: float = 300.0
    grace_s: float = 60.0
    retention_days: float = 90.0
    # How much lower the bulk lane's worker process runs than the gateway's (nice, 0-19):
    # positions can wait a few milliseconds for a core, an SOS cannot (docs/gateway.md).
    bulk_nice: int = 5
    # How many worker processes, each an MQTT session, share the bulk lane's subscription
    # (1-MAX_BULK_WORKERS): paho's per-message work then runs on that many cores.
    bulk_workers: int = 1
    # Client ids of retired gateways whose sessions this one drains and ends at start-up.
    adopt: tuple[str, ...] = ()
    room_db: str = ""  # accounts, audit log, incidents; default: room.sqlite beside db
    fleet: dict[str, str] = field(default_factory=dict)  # unit id -> vehicle type
    console: ConsoleConfig = field(default_factory=ConsoleConfig)


def load(path: str | Path) -> GatewayConfig:
    path = Path(path)
    try:
        # TOML is UTF-8 whatever the locale says (a dispatcher's name, a city's): not read_text().
        document = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 at byte {exc.start}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return parse(document, base=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def parse(document: dict[str, Any], base: Path = Path(".")) -> GatewayConfig:
    broker = _table(document, "broker")
    ingest = _table(document, "ingest", required=False)
    db = str(base / _get(document, "", "db", str))
    http_host, http_port = parse_host_port(
        _get(document, "", "http", str, "127.0.0.1:8080"), "http"
    )
    return GatewayConfig(
        broker=BrokerConfig(
            host=_get(broker, "broker.", "host", str),
            port=_port(_get(broker, "broker.", "port", int), "broker.port"),
            ca_file=str(base / _get(broker, "broker.", "ca_file", str)),
            username=_get(broker, "broker.", "username", str),
            password=_get(broker, "broker.", "password", str),
        ),
        db=db,
        http_host=http_host,
        http_port=http_port,
        client_id=_get(ingest, "ingest.", "client_id", str, "balise-gateway"),
        shared_group=_get(ingest, "ingest.", "shared_group", str, None),
        max_future_s=_positive(ingest, "max_future_s", 300.0),
        heartbeat_s=_positive(ingest, "heartbeat_s", 300.0),
        grace_s=_positive(ingest, "grace_s", 60.0),
        retention_days=_positive(ingest, "retention_days", 90.0),
        bulk_nice=_nice(_get(ingest, "ingest.", "bulk_nice", int, 5)),
        bulk_workers=_workers(_get(ingest, "ingest.", "bulk_workers", int, 1)),
        adopt=_adopt(ingest),
        room_db=str(
            base / _get(document, "", "room_db", str, str(Path(db).parent / "room.sqlite"))
        ),
        fleet=_fleet(_table(document, "fleet", required=False)),
        console=_console(_table(document, "console", required=False)),
    )


def _fleet(table: dict[str, Any]) -> dict[str, str]:
    from protocol import topics

    fleet = {}
    for unit_id, kind in table.items():
        if not topics.is_unit_id(unit_id):
            raise ConfigError(f"fleet.{unit_id}: not a unit id ([A-Za-z0-9_-], 1-32)")
        if kind not in VEHICLE_TYPES:
            raise ConfigError(
                f"fleet.{unit_id}: must be one of {', '.join(VEHICLE_TYPES)}, got {kind!r}"
            )
        fleet[unit_id] = kind
    return fleet


def _console(table: dict[str, Any]) -> ConsoleConfig:
    center = _get(table, "console.", "center", list, list(KENITRA))
    if len(center) != 2 or not all(type(v) in (int, float) for v in center):
        raise ConfigError(f"console.center: must be [lat, lon], got {center!r}")
    lat, lon = float(center[0]), float(center[1])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ConfigError(f"console.center: out of range, got {center!r}")
    zoom = _get(table, "console.", "zoom", int, 13)
    if not 1 <= zoom <= 19:
        raise ConfigError(f"console.zoom: must be 1-19, got {zoom}")
    url = _get(table, "console.", "tile_url", str, None)
    if url is not None and not all(part in url for part in ("{z}", "{x}", "{y}")):
        raise ConfigError(f"console.tile_url: must contain {{z}}, {{x}} and {{y}}, got {url!r}")
    return ConsoleConfig(url, _get(table, "console.", "attribution", str, ""), (lat, lon), zoom)


def parse_host_port(text: str, key: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"{key}: must be HOST:PORT, got {text!r}")
    return host.strip("[]"), _port(int(port), key)


def _table(document: dict[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    table = document.get(name)
    if table is None and not required:
        return {}
    if not isinstance(table, dict):
        raise ConfigError(
            f"[{name}]: missing table" if table is None else f"{name}: must be a table"
        )
    return table


_MISSING = object()


def _get(table: dict[str, Any], prefix: str, key: str, kind: type, default: Any = _MISSING) -> Any:
    if key not in table:
        if default is _MISSING:
            raise ConfigError(f"{prefix}{key}: missing")
        return default
    value = table[key]
    if kind is float and type(value) is int:
        value = float(value)
    if type(value) is not kind:
        raise ConfigError(f"{prefix}{key}: must be a {kind.__name__}, got {value!r}")
    return value


def _positive(table: dict[str, Any], key: str, default: float) -> float:
    value: float = _get(table, "ingest.", key, float, default)
    if value <= 0:
        raise ConfigError(f"ingest.{key}: must be positive, got {value}")
    return value


def _nice(value: int) -> int:
    if not 0 <= value <= 19:
        raise ConfigError(
            f"ingest.bulk_nice: must be 0-19 (0: the gateway's own priority), got {value}"
        )
    return value


def _workers(value: int) -> int:
    if not 1 <= value <= MAX_BULK_WORKERS:
        raise ConfigError(f"ingest.bulk_workers: must be 1-{MAX_BULK_WORKERS}, got {value}")
    return value


def _adopt(ingest: dict[str, Any]) -> tuple[str, ...]:
    value = _get(ingest, "ingest.", "adopt", list, [])
    own = _get(ingest, "ingest.", "client_id", str, "balise-gateway")
    for item in value:
        if not isinstance(item, str) or not item:
            raise ConfigError(f"ingest.adopt: each must be a gateway's client id, got {item!r}")
        if item == own:
            raise ConfigError(f"ingest.adopt: {item!r} is this gateway's own client id")
    return tuple(value)


def _port(port: int, key: str) -> int:
    if not 0 < port < 65536:
        raise ConfigError(f"{key}: must be 1-65535, got {port}")
    return port
