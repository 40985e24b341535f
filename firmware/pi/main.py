"""`balise unit`: run a unit on a Raspberry Pi.

The one module that chooses the concrete drivers: gpsd or a serial receiver
for GPS, RPi.GPIO (or the fake board off the Pi) for buttons, LEDs and buzzer,
paho-mqtt for the link; the core's durable state lives in --state-dir.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from typing import Any

from firmware.core.outbox import Outbox
from firmware.core.seqstore import SequenceStore
from firmware.core.storage import FileStorage
from firmware.core.unit import Unit
from firmware.errors import ConfigError
from firmware.pi import config as unit_config
from firmware.pi.runtime import Board, Runtime
from firmware.pi.systemd import Notifier
from firmware.pi.vitals import Vitals
from protocol import topics

log = logging.getLogger("balise.unit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="the unit's TOML file (units/<id>.toml)")
    parser.add_argument(
        "--gps",
        metavar="URL",
        help="GPS: gpsd://HOST:PORT or serial:///dev/ttyAMA0?baud=9600 (overrides the config)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the outbox and sequence file live (overrides the config)",
    )
    parser.add_argument(
        "--fake-gpio",
        action="store_true",
        help="no buttons, LEDs or buzzer (off a Pi, or for a GPS-only test unit)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    config = unit_config.load(args.config)
    state_dir = Path(args.state_dir or config.state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"state dir {state_dir}: cannot create: {exc.strerror}") from exc
    storage = FileStorage(str(state_dir))
    unit = Unit(
        config.unit_id,
        config.core,
        SequenceStore(storage),
        Outbox(config.unit_id, storage),
        storage=storage,  # the open alarm and the pending status survive a restart
    )
    notifier = Notifier()
    runtime = Runtime(
        unit, vitals=Vitals(str(state_dir), config.supply_voltage_file), watchdog=notifier.watchdog
    )
    link = _link(config, runtime)
    try:
        board = _board(config, runtime, fake=args.fake_gpio)
    except ConfigError as exc:  # a [pins] problem: say which file
        raise ConfigError(f"{args.config}: {exc}") from exc
    gps = _gps(args.gps or config.gps)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runtime.stop())
    log.info(
        "unit %s: broker %s:%d, GPS %s, state %s",
        config.unit_id,
        config.broker.host,
        config.broker.port,
        args.gps or config.gps,
        state_dir,
    )
    notifier.ready()
    try:
        runtime.run(link, board, gps)
    finally:
        notifier.stopping()
    return 0


def _link(config: unit_config.PiUnitConfig, runtime: Runtime) -> Any:
    from firmware.drivers.mqtt_paho import BrokerSettings, PahoLink

    broker = config.broker
    settings = BrokerSettings(
        host=broker.host,
        port=broker.port,
        username=broker.username,
        password=broker.password,
        ca_file=broker.ca_file,
        client_id=config.unit_id,
        cmd_topic=topics.cmd_topic(config.unit_id),
    )
    return PahoLink(settings, runtime.post)


def _board(config: unit_config.PiUnitConfig, runtime: Runtime, fake: bool) -> Board:
    from firmware.drivers.gpio_board import DEFAULT_PINS, split_pins

    # Checked even for the fake board, so a bad [pins] table fails at start.
    pins = split_pins({**DEFAULT_PINS, **config.pins}, config.core.buttons)
    if fake:
        from firmware.drivers.gpio_fake import FakeBoard

        return FakeBoard(on_edge=runtime.on_edge)
    from firmware.drivers.gpio_rpi import RpiGpioBoard

    return RpiGpioBoard(pins.buttons, pins.leds, pins.buzzer, runtime.on_edge)


def _gps(url: str) -> Any:
    from firmware.drivers.gps import open_gps

    return open_gps(url)
