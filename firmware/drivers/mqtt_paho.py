"""The unit's MQTT link on a Pi, with paho-mqtt.

MQTT 3.1.1 over TLS with the deployment's CA and the unit's own user, a
persistent session (clean session off, client id = unit id) so commands sent
while the unit was away still reach it, QoS 1, and the retained `online` last
will. The link runs its own network thread instead of paho's loop_start():
every reconnect needs a *fresh* last will (a new sequence number from the
core, or the gateway would drop a second "offline" as a duplicate), and the
backoff between attempts is capped and jittered so a fleet does not storm a
restarted broker in step.

Threads: the link's own thread connects, waits out the backoff and rearms
the will; during a session paho's loop_start() thread moves the bytes, so
`publish` may be called from the runtime's thread. Everything the
link learns is handed to `on_event(kind, value)`: ("up", None),
("down", reason), ("puback", token), ("message", (topic, payload)).
paho is imported only here.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

from firmware.errors import ConfigError

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 30
BACKOFF_MIN_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0


class Backoff:
    """Capped exponential backoff with full jitter: uniform(min, min(cap, min * 2**n))."""

    def __init__(
        self,
        min_s: float = BACKOFF_MIN_SECONDS,
        max_s: float = BACKOFF_MAX_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.min_s * 2**self.attempt)
        self.attempt += 1
        return self._rng.uniform(self.min_s, max(self.min_s, ceiling))

    def reset(self) -> None:
        self.attempt = 0


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    username: str
    password: str
    ca_file: str | None  # None: plain TCP (only for tests of the link itself)
    client_id: str
    cmd_topic: str


EventSink = Callable[[str, object], None]


class PahoLink:
    """One unit's MQTT session."""

    def __init__(
        self, settings: BrokerSettings, on_event: EventSink, backoff: Backoff | None = None
    ) -> None:
        from paho.mqtt import client as mqtt

        self._mqtt = mqtt
        self.settings = settings
        self._on_event = on_event
        self._backoff = backoff or Backoff()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            clean_session=False,  # [MQTT-3.1.2-4]: keep subscriptions and queued QoS 1 commands
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        self._client.username_pw_set(settings.username, settings.password)
        if settings.ca_file is not None:
            try:
                self._client.tls_set(ca_certs=settings.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
            except OSError as exc:  # missing or unreadable file; ssl.SSLError: not a certificate
                raise ConfigError(
                    f"broker.ca_file {settings.ca_file}: cannot load the CA certificate: {exc}"
                ) from exc
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_publish = self._handle_publish
        self._client.on_message = self._handle_message
        self._tokens: dict[int, int] = {}  # paho mid -> outbox token
        self._untracked: set[int] = set()  # mids of publishes without a token (presence)
        self._early_pubacks: set[int] = set()  # PUBACKs that came before their mid was known
        self._lock = threading.Lock()
        self._will_ready = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._ended = threading.Event()  # the current session is over
        self._end_reason = ""
        self._thread: threading.Thread | None = None

    # -- the runtime's side --------------------------------------------------

    def start(self, will_topic: str, will_payload: bytes) -> None:
        self.rearm(will_topic, will_payload)
        self._thread = threading.Thread(
            target=self._run, name=f"link-{self.settings.client_id}", daemon=True
        )
        self._thread.start()

    def rearm(self, will_topic: str, will_payload: bytes) -> None:
        """The last will for the next connection; the link waits for it before reconnecting."""
        self._client.will_set(will_topic, will_payload, qos=1, retain=True)
        self._will_ready.set()

    def publish(
        self, topic: str, payload: bytes, qos: int, retain: bool, token: int | None
    ) -> None:
        # paho is never called while holding self._lock: its network thread
        # holds paho's own lock when it calls _handle_publish, which takes ours.
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        with self._lock:
            acked_early = info.mid in self._early_pubacks
            if acked_early:
                self._early_pubacks.discard(info.mid)
            elif token is not None:
                self._tokens[info.mid] = token
            else:
                self._untracked.add(info.mid)
        if acked_early and token is not None:
            self._on_event("puback", token)

    def close(self, timeout_s: float = 5.0) -> None:
        """Leave cleanly: the broker does not publish the will on a DISCONNECT."""
        self._stop.set()
        self._will_ready.set()
        if self._connected.is_set():
            self._client.disconnect()  # queued behind any publish still going out
            self._ended.wait(timeout_s / 2)
        self._ended.set()  # also ends a session still waiting for its CONNACK
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- the network thread --------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._will_ready.wait()
            if self._stop.is_set():
                return
            self._will_ready.clear()
            reason = self._session()
            self._connected.clear()
            self._on_event("down", reason)
            if not self._stop.is_set():
                self._stop.wait(self._backoff.next_delay())

    def _session(self) -> str:
        """One connection, from connect to loss; returns why it ended."""
        settings = self.settings
        self._ended.clear()
        with self._lock:
            # No PUBACK can come before the CONNACK: an early one left from an earlier
            # session belongs to nothing now, and must not pass for a new publish's.
            self._early_pubacks.clear()
        try:
            self._client.connect(settings.host, settings.port, keepalive=KEEPALIVE_SECONDS)
        except (OSError, ssl.SSLError) as exc:
            log.warning("cannot reach broker %s:%d: %s", settings.host, settings.port, exc)
            return f"connect failed: {exc}"
        # paho's own thread for the session: with it running, publish() from the
        # runtime's thread only queues (without it, publish writes to the socket
        # from the caller's thread, racing this one on the TLS stream).
        self._client.loop_start()
        self._ended.wait()
        self._client.loop_stop()
        return self._end_reason

    def _handle_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            client.disconnect()
            return
        self._backoff.reset()
        client.subscribe(self.settings.cmd_topic, qos=1)
        self._connected.set()
        self._on_event("up", None)

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        self._end_reason = f"connection lost: {reason_code}"
        self._ended.set()

    def _handle_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            token = self._tokens.pop(mid, None)
            if token is None and mid not in self._untracked:
                # The PUBACK beat publish() to registering its mid.
                self._early_pubacks.add(mid)
            self._untracked.discard(mid)
        if token is not None:
            self._on_event("puback", token)

    def _handle_message(self, client, userdata, message) -> None:
        self._on_event("message", (message.topic, bytes(message.payload)))
