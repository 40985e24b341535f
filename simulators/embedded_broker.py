"""The demo's broker where mosquitto is not installed: amqtt (PyPI), on loopback.

`balise demo` prefers the real mosquitto. On a machine without it (and without root
to install it), it falls back to amqtt, an asyncio MQTT 3.1.1 broker in Python, run
as its own process with the same deployment: the same TLS certificate and port, the
same users with the same passwords (amqtt checks argon2 hashes, so the passwords are
read from the deployment's client configs and hashed again into a file of its own),
and the same rules as mosquitto's ACL file (a unit writes its uplink topics and reads
its own `cmd`; the gateway reads every uplink and writes every `cmd`), applied by the
plugin in simulators/amqtt_rules.py.

It is for the demo only: amqtt keeps sessions and retained messages in memory (a
restart forgets the gateway's queued messages), and it is far slower than mosquitto.
It imports nothing of ours beyond provisioning's names, so it stays a thin adapter.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

from gateway.provision.contract import GATEWAY_USER
from simulators.errors import SimulatorError

DIR_NAME = "embedded-broker"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SimulatorError(f"cannot read {path}: {exc}") from exc


def _credentials(path: Path) -> tuple[str, str]:
    broker = _read_toml(path).get("broker", {})
    username, password = broker.get("username"), broker.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise SimulatorError(f"{path}: [broker] needs a username and a password")
    return username, password


def write_config(deployment: Path) -> Path:
    """Write amqtt's configuration and password file for `deployment`; return the config."""
    from argon2 import PasswordHasher

    gateway = _read_toml(deployment / "gateway.toml")
    port = gateway.get("broker", {}).get("port")
    if not isinstance(port, int):
        raise SimulatorError(f"{deployment / 'gateway.toml'}: [broker] has no port")
    users = dict([_credentials(deployment / "gateway.toml")])
    users.update(_credentials(path) for path in sorted((deployment / "units").glob("*.toml")))
    unit_ids = [user for user in users if user != GATEWAY_USER]
    if not unit_ids:
        raise SimulatorError(f"{deployment / 'units'}: no unit configs to admit")

    directory = deployment / DIR_NAME
    directory.mkdir(mode=0o700, exist_ok=True)
    hasher = PasswordHasher()
    passwd = directory / "passwd"
    passwd.write_text("".join(f"{user}:{hasher.hash(pw)}\n" for user, pw in users.items()))
    passwd.chmod(0o600)
    config = {
        "listeners": {
            "default": {
                "type": "tcp",
                "bind": f"127.0.0.1:{port}",  # loopback only, whatever the deployment binds
                "ssl": True,
                "certfile": str(deployment / "server.crt"),
                "keyfile": str(deployment / "server.key"),
            }
        },
        "plugins": {
            "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(passwd)},
            # mosquitto's ACL, decided from protocol/topics.py
            "simulators.amqtt_rules.BaliseTopicRules": {},
        },
    }
    import yaml  # comes with amqtt

    path = directory / "amqtt.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def check_installed() -> None:
    """Raise SimulatorError naming what to install if amqtt is missing."""
    try:
        import amqtt  # noqa: F401
    except ImportError as exc:
        raise SimulatorError(
            "neither mosquitto nor amqtt is installed: `make demo` installs both"
            " (`apt-get install mosquitto`, or `pip install -e '.[sim]'`)"
        ) from exc


def command(deployment: Path) -> list[str]:
    """The command that runs amqtt on `deployment`'s port (its files written first)."""
    check_installed()
    config = write_config(deployment)
    return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(config)]
