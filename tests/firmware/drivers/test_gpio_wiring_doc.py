"""docs/wiring.md and its picture show the pins that the firmware uses (DEFAULT_PINS)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from firmware.drivers.gpio_board import DEFAULT_PINS, HEADER_PINS

ROOT = Path(__file__).resolve().parents[3]
WIRING = ROOT / "docs" / "wiring.md"
PICTURE = ROOT / "docs" / "img" / "pi-header.svg"
DRAWER = ROOT / "docs" / "img" / "make_pi_header.py"
# A row of the pin map: | `key` | part | GPIOn | header pin | direction |
ROW = re.compile(r"^\| `(\w+)` \| [^|]+ \| GPIO(\d+) \| (\d+) \| [^|]+ \|$", re.MULTILINE)


def drawer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_pi_header", DRAWER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pin_map_table_is_the_default_map() -> None:
    rows = ROW.findall(WIRING.read_text(encoding="utf-8"))
    documented = {key: (int(gpio), int(pin)) for key, gpio, pin in rows}
    expected = {key: (gpio, HEADER_PINS[gpio]) for key, gpio in DEFAULT_PINS.items()}
    assert len(rows) == len(documented)  # no key twice
    assert documented == expected


def test_the_page_shows_the_picture() -> None:
    text = WIRING.read_text(encoding="utf-8")
    assert "](img/pi-header.svg)" in text
    assert PICTURE.exists()


def test_the_picture_labels_every_default_pin() -> None:
    svg = PICTURE.read_text(encoding="utf-8")
    for key, gpio in DEFAULT_PINS.items():
        label = f'<g data-pin="{HEADER_PINS[gpio]}" data-gpio="{gpio}" data-key="{key}">'
        assert label in svg, key
    assert svg.count("data-key=") == len(DEFAULT_PINS)


def test_the_picture_is_drawn_from_the_current_code() -> None:
    # After changing DEFAULT_PINS: .venv/bin/python docs/img/make_pi_header.py
    assert PICTURE.read_text(encoding="utf-8") == drawer().svg()
