"""mosquitto 2.0's files as text: password file entries, the ACL file and mosquitto.conf.

Pure functions; no file I/O. The password hash is the `$7$` format that mosquitto_passwd 2.0
writes and the broker checks: PBKDF2-HMAC-SHA512 with a 12-byte random salt, 101 iterations
and a 64-byte key, written `$7$<iterations>$<base64 salt>$<base64 key>` in standard base64
(mosquitto's apps/mosquitto_passwd; checked against mosquitto_passwd 2.0.11).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ProvisionError
from gateway.provision.contract import (
    DOWNLINK_KIND,
    GATEWAY_USER,
    UPLINK_KINDS,
    unit_topic,
)

PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default
SALT_BYTES = 12
KEY_BYTES = 64  # a whole SHA-512 digest

HEADER = "# Written by `balise provision`: run it again rather than editing this file.\n"


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A `$7$` hash of `password` for a mosquitto password file."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, KEY_BYTES)
    encoded_salt = base64.b64encode(salt).decode()
    encoded_key = base64.b64encode(key).decode()
    return f"$7${PBKDF2_ITERATIONS}${encoded_salt}${encoded_key}"


def password_matches(password_hash: str, password: str) -> bool:
    """True if `password_hash` is a `$7$` hash of `password`."""
    parts = password_hash.split("$")
    if len(parts) != 5 or parts[:2] != ["", "7"] or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except binascii.Error:
        return False
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), len(expected))
    return hmac.compare_digest(key, expected)


def parse_passwd(text: str) -> dict[str, str]:
    """username -> hash from a password file; comments and blank lines are skipped."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            username, _, password_hash = line.partition(":")
            entries[username] = password_hash
    return entries


def render_passwd(hashes: Mapping[str, str]) -> str:
    """A password file: one `username:hash` line per user."""
    lines = [f"{username}:{password_hash}\n" for username, password_hash in hashes.items()]
    return HEADER + "".join(lines)


def render_acl(unit_ids: Iterable[str]) -> str:
    """Explicit per-unit rules, then the gateway's; see docs/deployment.md for why not `%u`."""
    blocks = [_unit_acl(unit_id) for unit_id in unit_ids]
    gateway = [f"user {GATEWAY_USER}"]
    gateway += [f"topic read {unit_topic('+', kind)}" for kind in UPLINK_KINDS]
    gateway.append(f"topic write {unit_topic('+', DOWNLINK_KIND)}")
    blocks.append("\n".join(gateway) + "\n")
    intro = (
        "# A unit writes its own uplink topics and reads its own cmd topic, nothing else:\n"
        "# not another unit's topics, and not its own cmd (that would fake an acknowledgement).\n"
    )
    return HEADER + intro + "\n" + "\n".join(blocks)


def _unit_acl(unit_id: str) -> str:
    lines = [f"user {unit_id}"]
    lines += [f"topic write {unit_topic(unit_id, kind)}" for kind in UPLINK_KINDS]
    lines.append(f"topic read {unit_topic(unit_id, DOWNLINK_KIND)}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BrokerFiles:
    """Absolute paths mosquitto.conf points at."""

    password_file: Path
    acl_file: Path
    persistence_dir: Path
    ca_cert: Path
    server_cert: Path
    server_key: Path


def render_conf(files: BrokerFiles, *, port: int, bind: str, broker_user: str) -> str:
    for path in vars(files).values():
        _check_conf_path(path)
    return f"""{HEADER}
per_listener_settings false
allow_anonymous false
password_file {files.password_file}
acl_file {files.acl_file}

# Started as root, mosquitto 2.0 switches to this user (default 'mosquitto') before it reads
# the password and ACL files; 'root' keeps it as root. See docs/deployment.md.
user {broker_user}

persistence true
persistence_location {files.persistence_dir}

# The gateway sends its PUBACK only once a message is stored, so many QoS 1
# messages are in flight to it at once (the default, 20, would cap ingest at
# 20 per commit); and what arrives for a disconnected persistent session (the
# gateway restarting, a unit's commands while it is in a tunnel) is queued.
max_inflight_messages 1000
max_queued_messages 100000

log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true

listener {port} {bind}
cafile {files.ca_cert}
certfile {files.server_cert}
keyfile {files.server_key}
tls_version tlsv1.2
"""


def _check_conf_path(path: Path) -> None:
    # mosquitto.conf has no quoting: a file option's value is the rest of its line (spaces are
    # fine), so a line break or other control character would start a new option.
    text = str(path)
    if not path.is_absolute() or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ProvisionError(f"cannot use {text!r} in mosquitto.conf: it has a control character")
