"""Draw docs/img/pi-header.svg: the Pi's 40-pin header with a unit's pins labelled.

The GPIO labels come from firmware.drivers.gpio_board.DEFAULT_PINS, so the
picture follows the code; run it again after changing the default pins:

    .venv/bin/python docs/img/make_pi_header.py
    rsvg-convert -b white docs/img/pi-header.svg -o docs/img/pi-header.png

tests/firmware/drivers/test_gpio_wiring_doc.py checks that the SVG matches.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from firmware.core.config import DEFAULT_BUTTONS
from firmware.drivers.gpio_board import BUZZER, DEFAULT_PINS, HEADER_PINS, LED_SUFFIX

OUT = Path(__file__).with_name("pi-header.svg")

WIDTH = 1000
TOP = 118  # y of the first row
ROW = 34
LEFT_PIN_X = 480
RIGHT_PIN_X = 520
CHAR_PX = 7.83  # DejaVu Sans Mono at 13 px
FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"

# role -> (fill, text colour, legend)
COLOURS = {
    "button": ("#1f5fbf", "#fff", "button: input, pulled up, closes to GND"),
    "led": ("#23883a", "#fff", "LED: output, through 330 Ω to the LED, to GND"),
    "buzzer": ("#7b3bb0", "#fff", "buzzer: output, drives a 2N2222 through 1 kΩ"),
    "uart": ("#c8661b", "#fff", "GPS UART: 3.3 V logic only"),
    "5v": ("#c62828", "#fff", "5 V"),
    "3v3": ("#f0b429", "#222", "3.3 V"),
    "gnd": ("#2b2b2b", "#fff", "GND"),
}
UNUSED = ("#d8d8d8", "#777")

# Physical pins that are not GPIOs, and what the unit wires to some of them.
POWER = {
    1: ("3V3", "3v3", "GPS VCC if it takes 3.3 V"),
    2: ("5V", "5v", None),
    4: ("5V", "5v", "buzzer + (5 V)"),
    6: ("GND", "gnd", "GPS GND"),
    9: ("GND", "gnd", None),
    14: ("GND", "gnd", "buzzer: 2N2222 emitter"),
    17: ("3V3", "3v3", None),
    20: ("GND", "gnd", "GND of GPS/link/SOS LEDs"),
    25: ("GND", "gnd", None),
    30: ("GND", "gnd", "harness GND"),
    34: ("GND", "gnd", "harness GND"),
    39: ("GND", "gnd", "harness GND (buttons)"),
}
UART = {14: "GPS RX ← TXD (3.3 V)", 15: "GPS TX → RXD (3.3 V)"}
ID_EEPROM = {0: "ID_SD", 1: "ID_SC"}
SHOUTED = {"sos": "SOS", "gps": "GPS"}


def key_label(key: str) -> tuple[str, str]:
    """(role, label) of a DEFAULT_PINS key."""
    if key == BUZZER:
        return "buzzer", "buzzer (via NPN)"
    if key.endswith(LED_SUFFIX):
        name = key[: -len(LED_SUFFIX)]
        return "led", SHOUTED.get(name, name) + " LED"
    if DEFAULT_BUTTONS.get(key) == "sos":
        return "button", "SOS button (guarded)"
    return "button", f"{key} button: {DEFAULT_BUTTONS[key].replace('_', ' ')}"


def pin_info(pin: int) -> tuple[str, str | None, str | None, str | None]:
    """(tag, role, label, DEFAULT_PINS key) of physical `pin`."""
    if pin in POWER:
        tag, role, label = POWER[pin]
        return tag, role, label, None
    gpio = {physical: bcm for bcm, physical in HEADER_PINS.items()}[pin]
    tag = ID_EEPROM.get(gpio, f"GPIO{gpio}")
    for key, bcm in DEFAULT_PINS.items():
        if bcm == gpio:
            role, label = key_label(key)
            return tag, role, label, key
    if gpio in UART:
        return tag, "uart", UART[gpio], None
    return tag, None, None, None


def pill(x: float, y: float, text: str, fill: str, ink: str, anchor_right: bool) -> str:
    width = len(text) * CHAR_PX + 14
    left = x - width if anchor_right else x
    return (
        f'<rect x="{left:.1f}" y="{y - 11}" width="{width:.1f}" height="22" rx="11" '
        f'fill="{fill}"/>'
        f'<text x="{left + width / 2:.1f}" y="{y + 4.5}" fill="{ink}" '
        f'text-anchor="middle">{escape(text)}</text>'
    )


def draw_pin(pin: int) -> str:
    tag, role, label, key = pin_info(pin)
    left_side = pin % 2 == 1
    y = TOP + (pin - 1) // 2 * ROW
    x = LEFT_PIN_X if left_side else RIGHT_PIN_X
    fill, ink = COLOURS[role][:2] if role else UNUSED
    used = role is not None
    attrs = f'data-pin="{pin}"'
    if tag.startswith("GPIO"):
        attrs += f' data-gpio="{tag[4:]}"'
    if key:
        attrs += f' data-key="{key}"'
    parts = [f"<g {attrs}>"]
    if pin == 1:  # pin 1 has the square pad
        parts.append(f'<rect x="{x - 11}" y="{y - 11}" width="22" height="22" fill="{fill}"/>')
    else:
        parts.append(f'<circle cx="{x}" cy="{y}" r="11" fill="{fill}"/>')
    parts.append(
        f'<text x="{x}" y="{y + 4}" fill="{ink}" font-size="11" text-anchor="middle">{pin}</text>'
    )
    tag_fill, tag_ink = ("#f4f4f4", "#111") if used else ("#f4f4f4", "#999")
    weight = ' font-weight="bold"' if used else ""
    tag_x = x - 22 if left_side else x + 22
    tag_width = 7 * CHAR_PX + 10
    tag_left = tag_x - tag_width if left_side else tag_x
    parts.append(
        f'<rect x="{tag_left:.1f}" y="{y - 11}" width="{tag_width:.1f}" height="22" rx="4" '
        f'fill="{tag_fill}" stroke="#ccc"/>'
        f'<text x="{tag_left + tag_width / 2:.1f}" y="{y + 4.5}" fill="{tag_ink}"{weight} '
        f'text-anchor="middle">{tag}</text>'
    )
    if label and role:
        label_x = tag_left - 8 if left_side else tag_left + tag_width + 8
        parts.append(pill(label_x, y, label, fill, ink, anchor_right=left_side))
    parts.append("</g>")
    return "".join(parts)


def legend(y: int) -> str:
    parts = []
    for index, (fill, _, text) in enumerate(COLOURS.values()):
        column, row = divmod(index, 4)
        x = 60 + column * 470
        line_y = y + row * 26
        parts.append(
            f'<rect x="{x}" y="{line_y - 10}" width="20" height="20" rx="10" fill="{fill}"/>'
            f'<text x="{x + 30}" y="{line_y + 5}" fill="#222">{escape(text)}</text>'
        )
    return "".join(parts)


def svg() -> str:
    bottom = TOP + 19 * ROW
    height = bottom + 150
    board_top = TOP - 22
    header = (
        f'<rect x="{LEFT_PIN_X - 20}" y="{board_top}" width="{RIGHT_PIN_X - LEFT_PIN_X + 40}" '
        f'height="{bottom - board_top + 22}" rx="6" fill="#1a1a1a"/>'
    )
    title = (
        f'<text x="{WIDTH / 2}" y="36" font-size="20" font-weight="bold" text-anchor="middle" '
        f'fill="#111">balise unit: Raspberry Pi 40-pin header, default pins (BCM)</text>'
        f'<text x="{WIDTH / 2}" y="62" text-anchor="middle" fill="#444">'
        "Seen from above. Pin 1 (square) is at the microSD-card end; odd pins are the inner "
        "row,</text>"
        f'<text x="{WIDTH / 2}" y="80" text-anchor="middle" fill="#444">'
        "even pins the board's edge. Buttons and their LEDs use pins 29-40: one 2x6 connector."
        "</text>"
    )
    pins = "".join(draw_pin(pin) for pin in range(1, 41))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="{FONT}" font-size="13">\n'
        f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>\n'
        f"{title}\n{header}\n{pins}\n{legend(bottom + 50)}\n</svg>\n"
    )


if __name__ == "__main__":
    OUT.write_text(svg(), encoding="utf-8")
    print(f"wrote {OUT}")
