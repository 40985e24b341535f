"""Helpers for tests against the real broker: a provisioned deployment, a running mosquitto,
and paho-mqtt 2.x clients that connect over TLS and record what arrives.

Tests assert on what a subscriber receives, never on a publish call: mosquitto accepts (and
acknowledges) a publish its ACL refuses, then drops it silently.
"""

from __future__ import annotations

import ssl
import subprocess
import threading
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

WAIT_S = 5.0  # the longest any test waits for one thing that should happen


@dataclass(frozen=True)
class Deployment:
    """A deployment written by `balise provision` for a broker on `host:port`."""

    directory: Path
    host: str
    port: int
    unit_ids: tuple[str, ...]

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def conf(self) -> Path:
        return self.directory / "mosquitto.conf"

    def unit_password(self, unit_id: str) -> str:
        return _broker_table(self.directory / "units" / f"{unit_id}.toml")["password"]

    def gateway_user(self) -> tuple[str, str]:
        broker = _broker_table(self.directory / "gateway.toml")
        return broker["username"], broker["password"]


@dataclass
class Broker:
    """A mosquitto process started by a test on the deployment's port."""

    deployment: Deployment
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def host(self) -> str:
        return self.deployment.host

    @property
    def port(self) -> int:
        return self.deployment.port

    @property
    def ca_cert(self) -> Path:
        return self.deployment.ca_cert

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _broker_table(path: Path) -> dict[str, Any]:
    with path.open("rb") as stream:
        broker: dict[str, Any] = tomllib.load(stream)["broker"]
    return broker


def make_client(
    client_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    ca_cert: Path | None = None,
) -> mqtt.Client:
    """A paho client for MQTT 3.1.1, over TLS when `ca_cert` is given; it never reconnects."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        reconnect_on_failure=False,
    )
    if ca_cert is not None:
        client.tls_set(ca_certs=str(ca_cert))
    if username is not None:
        client.username_pw_set(username, password)
    return client


@dataclass
class Session:
    """A connected client and everything it received, in order."""

    client: mqtt.Client
    received: list[tuple[str, bytes]] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def on_message(self, _client: mqtt.Client, _userdata: object, message: Any) -> None:
        with self._arrived:
            self.received.append((message.topic, message.payload))
            self._arrived.notify_all()

    def wait_for(self, topic: str, payload: bytes, timeout: float = WAIT_S) -> bool:
        """True once (topic, payload) has arrived; False after `timeout` seconds."""
        with self._arrived:
            return self._arrived.wait_for(lambda: (topic, payload) in self.received, timeout)

    def topics(self) -> set[str]:
        with self._arrived:
            return {topic for topic, _ in self.received}

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK, which only orders events: the
        broker acknowledges a publish its ACL drops too."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=WAIT_S)

    def subscribe(self, topic: str) -> None:
        """Subscribe at QoS 1 and wait for the SUBACK, whatever it grants."""
        done = threading.Event()
        self.client.on_subscribe = lambda *_args: done.set()
        result, _mid = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS, f"SUBSCRIBE {topic} not sent: {result}"
        assert done.wait(WAIT_S), f"no SUBACK for {topic} within {WAIT_S} s"


@contextmanager
def connected(
    broker: Broker,
    username: str,
    password: str,
    *,
    client_id: str,
    subscribe: Iterable[str] = (),
    max_inflight: int | None = None,
) -> Iterator[Session]:
    """A session connected over TLS (its CONNACK accepted), subscribed to `subscribe`;
    `max_inflight` QoS 1 publishes unacknowledged at once (paho's default: 20)."""
    client = make_client(client_id, username=username, password=password, ca_cert=broker.ca_cert)
    if max_inflight is not None:
        client.max_inflight_messages_set(max_inflight)
    session = Session(client)
    client.on_message = session.on_message
    refusal = _connect(client, broker.host, broker.port)
    assert refusal is None, f"{username} could not connect: {refusal}\n{broker.log()}"
    try:
        for topic in subscribe:
            session.subscribe(topic)
        yield session
    finally:
        client.disconnect()
        client.loop_stop()


def attempt_connect(
    host: str,
    port: int,
    *,
    client_id: str,
    username: str | None = None,
    password: str | None = None,
    ca_cert: Path | None = None,
) -> str | None:
    """None if the broker accepts this connection, else why it did not (for assertions)."""
    client = make_client(client_id, username=username, password=password, ca_cert=ca_cert)
    try:
        return _connect(client, host, port)
    finally:
        client.disconnect()
        client.loop_stop()


def _connect(client: mqtt.Client, host: str, port: int) -> str | None:
    """Connect and start the network loop; None once CONNACK accepts, else the reason."""
    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_c: mqtt.Client, _u: object, _flags: object, reason: Any, _p: object) -> None:
        outcome.setdefault("connack", reason)
        answered.set()

    def on_disconnect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        outcome.setdefault("closed", reason)
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(host, port, keepalive=30)
    except (OSError, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"
    client.loop_start()
    if not answered.wait(WAIT_S):
        return f"no CONNACK within {WAIT_S} s"
    connack = outcome.get("connack")
    if connack is not None and not connack.is_failure:
        return None
    if connack is not None:
        return f"CONNACK refused: {connack}"
    return f"closed before CONNACK: {outcome.get('closed')}"
