"""A unit's configuration file (units/<id>.toml, written by `balise provision`).

    [unit]      id; optional state_dir, gps (URL), supply_voltage_file
    [broker]    host, port, ca_file, username, password
    [core]      optional: any setting of firmware.core.config.UnitConfig
    [buttons]   optional: button name -> status name or "sos"
    [pins]      optional: button/LED name -> BCM pin number; "buzzer" for the buzzer

Every error names the key and what is wrong with it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.core.config import UnitConfig
from firmware.errors import ConfigError
from protocol import topics

DEFAULT_STATE_DIR = "/var/lib/balise"
DEFAULT_GPS_URL = "gpsd://127.0.0.1:2947"


@dataclass
class BrokerConfig:
    host: str
    port: int
    ca_file: str
    username: str
    password: str


@dataclass
class PiUnitConfig:
    unit_id: str
    broker: BrokerConfig
    core: UnitConfig
    state_dir: str = DEFAULT_STATE_DIR
    gps: str = DEFAULT_GPS_URL
    supply_voltage_file: str | None = None
    pins: dict[str, int] = field(default_factory=dict)


def load(path: str | Path) -> PiUnitConfig:
    path = Path(path)
    try:
        # TOML is UTF-8 whatever the locale says; a byte that is not is a TOML error too.
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


def parse(document: dict[str, Any], base: Path = Path(".")) -> PiUnitConfig:
    unit = _table(document, "unit")
    unit_id = _get(unit, "unit", "id", str)
    if not topics.is_unit_id(unit_id):
        raise ConfigError(f"unit.id: bad unit id {unit_id!r}: use 1-32 of A-Z a-z 0-9 _ -")
    broker = _table(document, "broker")
    core_settings = dict(_table(document, "core", required=False))
    buttons = _table(document, "buttons", required=False)
    if buttons:
        core_settings["buttons"] = dict(buttons)
    pins = _table(document, "pins", required=False)
    for name, pin in pins.items():
        if type(pin) is not int or not 0 <= pin <= 27:
            raise ConfigError(f"pins.{name}: must be a BCM GPIO number 0-27, got {pin!r}")
    return PiUnitConfig(
        unit_id=unit_id,
        broker=BrokerConfig(
            host=_get(broker, "broker", "host", str),
            port=_port(broker),
            ca_file=str(base / _get(broker, "broker", "ca_file", str)),
            username=_get(broker, "broker", "username", str),
            password=_get(broker, "broker", "password", str),
        ),
        core=UnitConfig(**core_settings),
        state_dir=_get(unit, "unit", "state_dir", str, DEFAULT_STATE_DIR),
        gps=_get(unit, "unit", "gps", str, DEFAULT_GPS_URL),
        supply_voltage_file=_get(unit, "unit", "supply_voltage_file", str, None),
        pins=dict(pins),
    )


def _table(document: dict[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    table = document.get(name)
    if table is None and not required:
        return {}
    if table is None:
        raise ConfigError(f"[{name}]: missing table")
    if not isinstance(table, dict):
        raise ConfigError(f"{name}: must be a table, got {table!r}")
    return table


_MISSING = object()


def _get(table: dict[str, Any], section: str, key: str, kind: type, default: Any = _MISSING) -> Any:
    if key not in table:
        if default is _MISSING:
            raise ConfigError(f"{section}.{key}: missing")
        return default
    value = table[key]
    if type(value) is not kind:
        raise ConfigError(f"{section}.{key}: must be a {kind.__name__}, got {value!r}")
    return value


def _port(broker: dict[str, Any]) -> int:
    port = _get(broker, "broker", "port", int)
    if not 0 < port < 65536:
        raise ConfigError(f"broker.port: must be 1-65535, got {port}")
    return port
