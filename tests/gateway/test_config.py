"""gateway.toml: every bad value is refused with the key that holds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway import config
from gateway.config import ConfigError

BASE: dict[str, Any] = {
    "db": "gateway.sqlite",
    "broker": {
        "host": "localhost",
        "port": 8883,
        "ca_file": "ca.crt",
        "username": "balise.gateway",
        "password": "secret",
    },
}


def test_defaults_put_the_room_database_beside_the_store_and_centre_on_kenitra() -> None:
    parsed = config.parse(BASE, base=Path("/srv/balise"))
    assert parsed.room_db == "/srv/balise/room.sqlite"
    assert parsed.console.center == (34.2610, -6.5802) and parsed.console.tile_url is None
    assert parsed.fleet == {}
    assert parsed.bulk_nice == 5  # positions yield a core to alarms
    assert config.parse({**BASE, "ingest": {"bulk_nice": 0}}).bulk_nice == 0
    assert parsed.bulk_workers == 1
    assert parsed.adopt == ()
    assert config.parse({**BASE, "ingest": {"adopt": ["gw-b"]}}).adopt == ("gw-b",)
    assert config.parse({**BASE, "ingest": {"bulk_workers": 4}}).bulk_workers == 4


def test_fleet_and_console_tables_are_read() -> None:
    document = {
        **BASE,
        "fleet": {"KEN-M01": "motorcycle", "KEN-C01": "car"},
        "console": {
            "tile_url": "http://tiles.local/{z}/{x}/{y}.png",
            "attribution": "© OSM",
            "center": [34.0, -6.8],
            "zoom": 12,
        },
    }
    parsed = config.parse(document)
    assert parsed.fleet == {"KEN-M01": "motorcycle", "KEN-C01": "car"}
    assert parsed.console.zoom == 12 and parsed.console.center == (34.0, -6.8)


@pytest.mark.parametrize(
    ("table", "value", "message"),
    [
        ("fleet", {"KEN-M01": "bicycle"}, "fleet.KEN-M01: must be one of motorcycle, car"),
        ("fleet", {"KEN M01": "car"}, "fleet.KEN M01: not a unit id"),
        ("fleet", "motorcycle", "fleet: must be a table"),
        ("console", {"center": [95, 0]}, "console.center: out of range"),
        ("console", {"center": [34.0]}, "console.center: must be [lat, lon]"),
        ("console", {"zoom": 40}, "console.zoom: must be 1-19, got 40"),
        ("console", {"tile_url": "http://x/tiles.png"}, "console.tile_url: must contain {z}"),
        ("ingest", {"bulk_nice": 20}, "ingest.bulk_nice: must be 0-19"),
        ("ingest", {"bulk_nice": -5}, "ingest.bulk_nice: must be 0-19 .* got -5"),
        ("ingest", {"bulk_nice": 2.5}, "ingest.bulk_nice: must be a int, got 2.5"),
        ("ingest", {"bulk_workers": 0}, "ingest.bulk_workers: must be 1-4, got 0"),
        ("ingest", {"bulk_workers": 5}, "ingest.bulk_workers: must be 1-4, got 5"),
        ("ingest", {"adopt": "gw-b"}, "ingest.adopt: must be a list, got 'gw-b'"),
        ("ingest", {"adopt": [""]}, "ingest.adopt: each must be a gateway's client id, got ''"),
        ("ingest", {"adopt": ["balise-gateway"]}, "ingest.adopt: 'balise-gateway' is this"),
    ],
)
def test_bad_values_name_their_key(table: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        config.parse({**BASE, table: value})


def test_load_reads_utf8_and_names_bytes_that_are_not(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_bytes(b'db = "g\xc3\xa9.sqlite"\n[broker]\n')
    with pytest.raises(ConfigError, match=r"gateway\.toml: \[broker\]|broker\.host: missing"):
        config.load(path)  # past the decoding: the é was read
    path.write_bytes(b'db = "\xe9"\n')
    with pytest.raises(ConfigError, match=r"gateway\.toml: not valid TOML: not UTF-8 at byte 6$"):
        config.load(path)
