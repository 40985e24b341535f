"""firmware/pi/config.py: a unit's TOML file; every error names the key and what is wrong."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from firmware.core.config import DEFAULT_BUTTONS
from firmware.drivers.gpio_board import DEFAULT_PINS, split_pins
from firmware.errors import ConfigError
from firmware.pi import config as unit_config

DOCUMENT: dict[str, Any] = {
    "unit": {"id": "KEN-M01"},
    "broker": {
        "host": "broker.example",
        "port": 8883,
        "ca_file": "ca.crt",
        "username": "KEN-M01",
        "password": "secret",
    },
}


def document(**tables: Any) -> dict[str, Any]:
    """DOCUMENT with some tables replaced (None: removed)."""
    result = copy.deepcopy(DOCUMENT)
    for name, table in tables.items():
        if table is None:
            result.pop(name, None)
        else:
            result[name] = table
    return result


def broker(**changes: Any) -> dict[str, Any]:
    return {**DOCUMENT["broker"], **changes}


def test_a_minimal_file_takes_the_defaults() -> None:
    config = unit_config.parse(document(), base=Path("/etc/balise/units"))
    assert config.unit_id == "KEN-M01"
    assert config.broker.port == 8883
    assert config.broker.ca_file == "/etc/balise/units/ca.crt"  # relative to the file
    assert config.state_dir == unit_config.DEFAULT_STATE_DIR
    assert config.gps == unit_config.DEFAULT_GPS_URL
    assert config.core.buttons == DEFAULT_BUTTONS and config.pins == {}


def test_core_buttons_and_pins_are_taken() -> None:
    config = unit_config.parse(
        document(
            core={"threshold_m": 10, "min_interval_s": 0},
            buttons={"b1": "available", "b2": "busy", "sos": "sos"},
            pins={"b1": 4},
        )
    )
    assert (config.core.threshold_m, config.core.min_interval_s) == (10, 0)
    assert config.core.buttons == {"b1": "available", "b2": "busy", "sos": "sos"}
    assert config.pins == {"b1": 4}


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"unit": None}, r"^\[unit\]: missing table$"),
        ({"broker": None}, r"^\[broker\]: missing table$"),
        ({"broker": "127.0.0.1"}, r"^broker: must be a table"),
        ({"unit": {"id": "KEN M01"}}, r"^unit\.id: bad unit id 'KEN M01'"),
        ({"unit": {}}, r"^unit\.id: missing$"),
        ({"broker": broker(port=0)}, r"^broker\.port: must be 1-65535, got 0$"),
        ({"broker": broker(port=65536)}, r"^broker\.port: must be 1-65535, got 65536$"),
        ({"broker": broker(port="8883")}, r"^broker\.port: must be a int, got '8883'$"),
        ({"broker": broker(port=True)}, r"^broker\.port: must be a int, got True$"),
        ({"broker": broker(password=1)}, r"^broker\.password: must be a str, got 1$"),
        ({"core": {"treshold_m": 10}}, r"^unknown setting treshold_m$"),
        ({"core": {"threshold_m": 0}}, r"^threshold_m: must be from 1 to 10000, got 0$"),
        ({"buttons": {"b1": "lunch", "sos": "sos"}}, r"^buttons\.b1: unknown action 'lunch'"),
        ({"buttons": {"b1": "available"}}, r"^buttons: no way to raise an SOS"),
        ({"pins": {"sos": 99}}, r"^pins\.sos: must be a BCM GPIO number 0-27, got 99$"),
        ({"pins": {"sos": "26"}}, r"^pins\.sos: must be a BCM GPIO number 0-27, got '26'$"),
    ],
)
def test_a_bad_value_names_its_key(tables: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        unit_config.parse(document(**tables))


def test_a_button_without_a_pin_is_named_when_the_board_is_wired() -> None:
    # parse() takes the table as it is; the runtime checks it against the pin map at start.
    config = unit_config.parse(document(buttons={"b1": "available", "b5": "busy", "sos": "sos"}))
    with pytest.raises(ConfigError, match=r"^pins: no pin for b5, b5_led$"):
        split_pins({**DEFAULT_PINS, **config.pins}, config.core.buttons)


# ---- load(): the file ----------------------------------------------------------------------


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read: No such file"):
        unit_config.load(tmp_path / "missing.toml")


def test_load_names_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "unit.toml"
    path.write_text("[unit\n")
    with pytest.raises(ConfigError, match=r"unit\.toml: not valid TOML: .*line 1"):
        unit_config.load(path)


def test_load_names_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "unit.toml"
    path.write_bytes(b'[unit]\nid = "\xe9"\n')
    with pytest.raises(ConfigError, match=r"unit\.toml: not valid TOML: not UTF-8 at byte 13$"):
        unit_config.load(path)


def test_load_puts_the_file_before_the_key(tmp_path: Path) -> None:
    path = tmp_path / "unit.toml"
    path.write_text('[unit]\nid = "KEN-M01"\n')
    with pytest.raises(ConfigError, match=r"unit\.toml: \[broker\]: missing table$"):
        unit_config.load(path)
