"""What a deployment directory holds, and the plan that (re)writes it.

`plan()` reads an existing deployment back (CA, server certificate, every password) and
computes the content of every file in memory, keeping what exists and adding what is new.
It writes nothing: `writer.write_plan()` does, atomically.
"""

from __future__ import annotations

import datetime
import os
import pwd
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.errors import ProvisionError
from gateway.provision import configs, mosquitto, pki
from gateway.provision.contract import GATEWAY_USER, check_unit_id

MANIFEST = "deployment.toml"
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
PASSWD = "passwd"
ACL = "acl"
CONF = "mosquitto.conf"
GATEWAY = "gateway.toml"
UNITS = "units"
BROKER_DATA = "broker-data"
GATEWAY_DB = "gateway.sqlite"

PUBLIC_MODE = 0o644
SECRET_MODE = 0o600
PRIVATE_DIR_MODE = 0o700

PASSWORD_BYTES = 24  # 32 URL-safe characters
_USER_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")


@dataclass(frozen=True)
class Request:
    """What the user asked for; None means 'keep the deployment's value, or the default'."""

    directory: Path
    unit_ids: tuple[str, ...]
    hosts: tuple[str, ...] | None = None
    port: int | None = None
    bind: str | None = None
    broker_user: str | None = None
    unit_types: dict[str, str] = field(default_factory=dict)  # unit id -> motorcycle | car


@dataclass(frozen=True)
class PlannedFile:
    path: str  # relative to the deployment directory
    content: bytes
    mode: int
    broker_reads: bool = False  # owned by the broker's user, which reads it after dropping root


@dataclass(frozen=True)
class Plan:
    directory: Path
    settings: configs.Settings
    files: tuple[PlannedFile, ...]
    dirs: tuple[PlannedFile, ...]  # content unused; mode and ownership only
    broker_owner: tuple[int, int] | None  # (uid, gid) to chown broker_reads paths to
    unit_ids: tuple[str, ...]
    new_unit_ids: tuple[str, ...]
    new_ca: bool
    new_server_cert: bool


@dataclass
class Existing:
    """An existing deployment as read from disk; empty for a new one."""

    settings: configs.Settings | None = None
    ca_cert: bytes | None = None
    ca_key: bytes | None = None
    server: pki.KeyPair | None = None
    passwd: dict[str, str] = field(default_factory=dict)
    unit_files: dict[str, str] = field(default_factory=dict)  # unit id -> its file's text
    unit_passwords: dict[str, str] = field(default_factory=dict)
    gateway_file: str | None = None
    gateway: configs.GatewayConfig | None = None


def plan(request: Request, default_broker_user: str, now: datetime.datetime) -> Plan:
    directory = request.directory
    existing = read_existing(directory)
    settings = _settings(request, existing.settings, default_broker_user)
    ca, new_ca = _ca(existing, directory, now)
    server, new_server = _server(existing, settings, ca, directory, now)

    new_unit_ids = tuple(u for u in request.unit_ids if u not in existing.unit_passwords)
    found = {**existing.unit_passwords, **{u: _new_password() for u in new_unit_ids}}
    passwords = {unit_id: found[unit_id] for unit_id in sorted(found)}
    gateway = existing.gateway or configs.GatewayConfig(
        password=_new_password(), db=str(directory / GATEWAY_DB), http=configs.DEFAULT_HTTP
    )
    files = _broker_files(directory, settings, ca, server, existing, passwords, gateway)
    files += _client_files(directory, settings, existing, passwords, gateway, request.unit_types)
    dirs = (
        PlannedFile(UNITS, b"", PRIVATE_DIR_MODE),
        PlannedFile(BROKER_DATA, b"", PRIVATE_DIR_MODE, broker_reads=True),
    )
    return Plan(
        directory=directory,
        settings=settings,
        files=tuple(files),
        dirs=dirs,
        broker_owner=_broker_owner(settings.broker_user, directory),
        unit_ids=tuple(passwords),
        new_unit_ids=new_unit_ids,
        new_ca=new_ca,
        new_server_cert=new_server,
    )


def _broker_files(
    directory: Path,
    settings: configs.Settings,
    ca: pki.KeyPair,
    server: pki.KeyPair,
    existing: Existing,
    unit_passwords: Mapping[str, str],
    gateway: configs.GatewayConfig,
) -> list[PlannedFile]:
    files = [
        PlannedFile(MANIFEST, _text(configs.render_manifest(settings)), PUBLIC_MODE),
        PlannedFile(CA_CERT, ca.cert_pem, PUBLIC_MODE),
        PlannedFile(SERVER_CERT, server.cert_pem, PUBLIC_MODE),
        PlannedFile(SERVER_KEY, server.key_pem, SECRET_MODE, broker_reads=True),
        _passwd_file(existing.passwd, unit_passwords, gateway.password),
        PlannedFile(
            ACL, _text(mosquitto.render_acl(unit_passwords)), SECRET_MODE, broker_reads=True
        ),
        PlannedFile(CONF, _text(_conf(directory, settings)), PUBLIC_MODE),
    ]
    if ca.key_pem:  # absent when the CA key is kept offline
        files.append(PlannedFile(CA_KEY, ca.key_pem, SECRET_MODE))
    return files


def _client_files(
    directory: Path,
    settings: configs.Settings,
    existing: Existing,
    unit_passwords: Mapping[str, str],
    gateway: configs.GatewayConfig,
    unit_types: Mapping[str, str],
) -> list[PlannedFile]:
    """gateway.toml and units/<id>.toml, each keeping what was added to it by hand."""
    broker = configs.BrokerAddress(settings.connect_host, settings.port, directory / CA_CERT)
    gateway_text = configs.render_gateway(
        broker, GATEWAY_USER, gateway, existing.gateway_file, GATEWAY, dict(unit_types)
    )
    files = [PlannedFile(GATEWAY, _text(gateway_text), SECRET_MODE)]
    for unit_id, password in unit_passwords.items():
        path = f"{UNITS}/{unit_id}.toml"
        old = existing.unit_files.get(unit_id)
        text = configs.render_unit(unit_id, broker, password, old, path)
        files.append(PlannedFile(path, _text(text), SECRET_MODE))
    return files


def read_existing(directory: Path) -> Existing:
    """Read back the deployment in `directory`; an absent or empty directory is a new one."""
    if not directory.exists():
        return Existing()
    if not directory.is_dir():
        raise ProvisionError(f"{directory} exists and is not a directory")
    if not (directory / MANIFEST).exists():
        if any(directory.iterdir()):
            raise ProvisionError(
                f"{directory} is not empty and holds no balise deployment (no {MANIFEST}): "
                "give a new or empty directory"
            )
        return Existing()
    unit_files = _read_unit_files(directory)
    gateway_file = _read_text(directory, GATEWAY, required=False) or None
    return Existing(
        settings=configs.read_manifest(_read_text(directory, MANIFEST), MANIFEST),
        ca_cert=_read(directory, CA_CERT, required=True),
        ca_key=_read(directory, CA_KEY),
        server=_read_server(directory),
        passwd=mosquitto.parse_passwd(_read_text(directory, PASSWD, required=False)),
        unit_files=unit_files,
        unit_passwords={
            unit_id: configs.read_unit_password(text, unit_id, f"{UNITS}/{unit_id}.toml")
            for unit_id, text in unit_files.items()
        },
        gateway_file=gateway_file,
        gateway=None if gateway_file is None else configs.read_gateway(gateway_file, GATEWAY),
    )


def _settings(
    request: Request, existing: configs.Settings | None, default_broker_user: str
) -> configs.Settings:
    base = existing or configs.Settings(
        (), configs.DEFAULT_PORT, configs.DEFAULT_BIND, default_broker_user
    )
    hosts = base.hosts if request.hosts is None else request.hosts
    port = base.port if request.port is None else request.port
    bind = base.bind if request.bind is None else request.bind
    broker_user = base.broker_user if request.broker_user is None else request.broker_user
    if not 1 <= port <= 65535:
        raise ProvisionError(f"bad port {port}: use 1-65535")
    if not _USER_NAME_RE.fullmatch(broker_user):
        raise ProvisionError(f"bad broker user {broker_user!r}: give a system user name")
    return configs.Settings(
        hosts=tuple(dict.fromkeys(pki.check_host(host) for host in hosts)),
        port=port,
        bind=pki.check_host(bind),
        broker_user=broker_user,
    )


def _ca(existing: Existing, directory: Path, now: datetime.datetime) -> tuple[pki.KeyPair, bool]:
    if existing.ca_cert is None:
        return pki.make_ca(now), True
    pki.load_cert(existing.ca_cert, str(directory / CA_CERT))
    pair = pki.KeyPair(existing.ca_cert, existing.ca_key or b"")
    if existing.ca_key is not None:
        pki.check_key_pair(pair, "the CA")
    return pair, False


def _server(
    existing: Existing,
    settings: configs.Settings,
    ca: pki.KeyPair,
    directory: Path,
    now: datetime.datetime,
) -> tuple[pki.KeyPair, bool]:
    wanted = pki.server_hosts(settings.hosts)
    if existing.server is not None:
        pki.check_key_pair(existing.server, "the server")
        covered = pki.cert_hosts(existing.server.cert_pem)
        missing = [host for host in wanted if host not in covered]
        if missing:
            raise ProvisionError(
                f"{directory / SERVER_CERT} does not cover {', '.join(missing)}: to issue a new "
                f"one, move {SERVER_CERT} and {SERVER_KEY} away and run again"
            )
        return existing.server, False
    if not ca.key_pem:
        raise ProvisionError(
            f"a new server certificate needs the CA key, and {directory / CA_KEY} is missing: "
            "put it back for this run"
        )
    return pki.issue_server_cert(ca, wanted, now), True


def _passwd_file(
    old_hashes: Mapping[str, str], unit_passwords: Mapping[str, str], gateway_password: str
) -> PlannedFile:
    passwords = {**unit_passwords, GATEWAY_USER: gateway_password}
    hashes: dict[str, str] = {}
    for username, password in passwords.items():
        old = old_hashes.get(username)
        # Reusing a matching hash leaves the file byte-for-byte unchanged on a rerun.
        if old is not None and mosquitto.password_matches(old, password):
            hashes[username] = old
        else:
            hashes[username] = mosquitto.hash_password(password)
    content = _text(mosquitto.render_passwd(hashes))
    return PlannedFile(PASSWD, content, SECRET_MODE, broker_reads=True)


def _conf(directory: Path, settings: configs.Settings) -> str:
    files = mosquitto.BrokerFiles(
        password_file=directory / PASSWD,
        acl_file=directory / ACL,
        persistence_dir=directory / BROKER_DATA,
        ca_cert=directory / CA_CERT,
        server_cert=directory / SERVER_CERT,
        server_key=directory / SERVER_KEY,
    )
    return mosquitto.render_conf(
        files, port=settings.port, bind=settings.bind, broker_user=settings.broker_user
    )


def _broker_owner(broker_user: str, directory: Path) -> tuple[int, int] | None:
    """Whom to give the broker's files to: only when we are root and the broker is not."""
    if os.geteuid() != 0 or broker_user == "root":
        return None
    try:
        entry = pwd.getpwnam(broker_user)
    except KeyError:
        raise ProvisionError(
            f"broker user {broker_user!r} does not exist on this machine"
        ) from None
    _check_reachable(directory, broker_user, entry.pw_uid, entry.pw_gid)
    return entry.pw_uid, entry.pw_gid


def _check_reachable(directory: Path, user: str, uid: int, gid: int) -> None:
    """mosquitto reads its files after switching to `user`: every existing directory above
    the deployment must let that user through (the deployment itself is made 0755)."""
    groups = set(os.getgrouplist(user, gid))
    for parent in directory.parents:
        if not parent.exists():
            continue
        st = parent.stat()
        if st.st_uid == uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            raise ProvisionError(
                f"broker user {user!r} cannot reach {directory}: {parent} does not let it "
                "through (chmod o+x, or choose another --dir or --broker-user)"
            )


def _read_server(directory: Path) -> pki.KeyPair | None:
    cert = _read(directory, SERVER_CERT)
    key = _read(directory, SERVER_KEY)
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        present, absent = (SERVER_CERT, SERVER_KEY) if key is None else (SERVER_KEY, SERVER_CERT)
        raise ProvisionError(
            f"{directory / present} is there but {absent} is not: put it back, "
            "or move both away to issue a new server certificate"
        )
    return pki.KeyPair(cert, key)


def _read_unit_files(directory: Path) -> dict[str, str]:
    """unit id -> text of units/<id>.toml: the units of a deployment are the files there."""
    units_dir = directory / UNITS
    if not units_dir.is_dir():
        return {}
    texts = {}
    for path in sorted(units_dir.glob("*.toml")):
        where = f"{UNITS}/{path.name}"
        try:
            unit_id = check_unit_id(path.stem)
        except ProvisionError as exc:
            raise ProvisionError(f"{where}: {exc}") from exc
        texts[unit_id] = _read_text(directory, where)
    return texts


def _read(directory: Path, name: str, *, required: bool = False) -> bytes | None:
    path = directory / name
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ProvisionError(
                f"{path} is missing: restore it (a rerun never makes a new {name}; "
                "every unit already trusts the old one)"
            ) from None
        return None
    except OSError as exc:
        raise ProvisionError(f"cannot read {path}: {exc.strerror}") from exc


def _read_text(directory: Path, name: str, *, required: bool = True) -> str:
    content = _read(directory, name, required=required)
    try:
        return "" if content is None else content.decode()
    except UnicodeDecodeError as exc:
        raise ProvisionError(f"{directory / name} is not UTF-8 text") from exc


def _new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def _text(text: str) -> bytes:
    return text.encode()
