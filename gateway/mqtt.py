"""The gateway's two MQTT sessions (lanes) and their ingest threads.

paho-mqtt with the gateway's user over TLS, QoS 1 and persistent sessions
with stable client ids, so nothing published while the gateway is down is
lost. Two sessions, so that an alarm never waits at the broker behind queued
positions (the broker keeps one queue per session and delivers it in order):

- the **bulk lane** (`client_id`, `balise-gateway` by default) subscribes to
  `pos`, `batch`, `health` and `online`: the volume; its session runs in a
  worker process (gateway/bulk.py), or in several sharing the subscription;
- the **alarm lane** (`client_id` + `-alarm`) subscribes to `status` and
  `sos`: what a unit waits for the command room to acknowledge.

Manual acknowledgement on both: a message's PUBACK goes to the broker only
after its batch is committed, in the order the messages came on that session
([MQTT-4.6.0-2]); a gateway killed before the commit gets them again. With
`shared_group` (MQTT 5) the bulk lane subscribes to `$share/<group>/…`, so
several gateways share the positions, while every gateway's alarm lane takes
every status and SOS: mosquitto queues a shared subscription's share for a
member that is down, and an SOS must not wait for a stopped gateway to come
back while another runs. Commands to units (acks, SOS acks,
assignments) go out on the alarm lane's session, ahead of the bulk lane's
stream of PUBACKs.

Threads: each session's paho network thread only appends to its lane's inbox;
one ingest thread per lane takes whatever has arrived as a batch (one message
when idle, thousands under load on the bulk lane), runs the pipeline, hands
the changed unit ids to `on_changes` (alarms apart, to `on_alarms`) and sends
the PUBACKs. The alarm lane counts its messages in and out of an `AlarmGate`
(gateway/precedence.py), which the bulk lane and the live feed's deltas
step aside for.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from gateway.config import GatewayConfig
from gateway.ingest import Incoming, Ingest
from gateway.precedence import AlarmGate
from protocol import topics

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 30
MAX_BATCH = 5000
RECONNECT_MIN_SECONDS = 1
RECONNECT_MAX_SECONDS = 30
MAX_INFLIGHT_MESSAGES = 1000
# Which uplink kinds each session subscribes to: every uplink kind exactly once.
BULK_KINDS = ("pos", "batch", "health", "online")
ALARM_KINDS = ("status", "sos")
ALARM_CLIENT_SUFFIX = "-alarm"
BULK_CLIENT_SUFFIX = "-bulk"  # + the worker's index, from 1 (worker 0 has the client id itself)


def subscriptions(kinds: tuple[str, ...], share: str | None) -> list[str]:
    """A session's filters, each behind `$share/<share>/` when other sessions share its load."""
    prefix = f"$share/{share}/" if share else ""
    return [prefix + topics.PREFIX + "+/" + kind for kind in kinds]


def bulk_client_id(client_id: str, index: int) -> str:
    """Bulk worker `index`'s session of the gateway `client_id` (worker 0: the client id)."""
    return client_id + (f"{BULK_CLIENT_SUFFIX}{index}" if index else "")


def bulk_lane_name(index: int) -> str:
    return "bulk" + (str(index) if index else "")


def bulk_share(config: GatewayConfig) -> str | None:
    """The group the bulk sessions share: `shared_group` (several gateways, MQTT 5), else the
    client id when the gateway runs several workers (one group per gateway). Those stay on
    MQTT 3.1.1, where mosquitto takes `$share` too and paho does a third less per message than
    over MQTT 5 (docs/benchmarks.md)."""
    if config.shared_group is not None:
        return config.shared_group
    return config.client_id if config.bulk_workers > 1 else None


def every_filter(client_id: str, shared_group: str | None) -> tuple[str, ...]:
    """Every filter a session of the gateway `client_id` may hold from any layout: one session
    for every uplink kind (`balise/v1/+/+`), one bulk worker or several, with or without
    `shared_group`, alarms shared or not. A session drops those it no longer wants at connect
    (unsubscribing a filter it does not hold does nothing)."""
    groups = ["", f"$share/{client_id}/"]
    if shared_group is not None:
        groups.append(f"$share/{shared_group}/")
    filters = [topics.PREFIX + "+/" + kind for kind in (*BULK_KINDS, *ALARM_KINDS)]
    every = [topics.UPLINK_SUBSCRIPTION, *filters]
    return tuple(group + topic for group in groups for topic in every)


class Lane:
    """One MQTT session of the gateway: its paho client, its inbox, its connection count."""

    def __init__(
        self,
        name: str,
        config: GatewayConfig,
        client_id: str,
        kinds: tuple[str, ...],
        legacy: tuple[str, ...] = (),
        gate: AlarmGate | None = None,
        share: str | None = None,
        ending: bool = False,
    ) -> None:
        from paho.mqtt import client as mqtt

        self.name = name
        self.gate = gate  # the alarm lane counts its messages in and out
        self.config = config
        self._mqtt = mqtt
        self.subscriptions = subscriptions(kinds, share)
        # Filters an earlier layout left on this session: dropped once the new ones hold.
        self.legacy = [topic for topic in legacy if topic not in self.subscriptions]
        # Connect with a clean session: the broker ends the one this client id had.
        self.ending = ending
        mqtt5 = config.shared_group is not None
        protocol = mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311
        kwargs: dict[str, Any] = {} if mqtt5 else {"clean_session": ending}
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            manual_ack=True,
            **kwargs,
        )
        self.client_id = client_id
        broker = config.broker
        self.client.username_pw_set(broker.username, broker.password)
        self.client.tls_set(ca_certs=broker.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.reconnect_delay_set(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
        self.client.max_inflight_messages_set(MAX_INFLIGHT_MESSAGES)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_unsubscribe = self._on_unsubscribe
        self.inbox: queue.SimpleQueue[Incoming | None] = queue.SimpleQueue()
        # Where _on_message hands each message (the bulk lane's worker: its batch).
        self.deliver: Callable[[Incoming], None] = self.inbox.put
        self.generation = 0
        self._subscribe_mid: int | None = None
        self._unsubscribe_mid: int | None = None
        self.connected = threading.Event()  # connected and subscribed (SUBACK received)
        self.unsubscribed = threading.Event()  # the legacy filters are gone (UNSUBACK received)
        self.session_present = False  # the broker had a session for this client id

    def start(self) -> None:
        """Connect and run the session on paho's own network thread."""
        self.prepare()
        self.client.loop_start()

    def prepare(self) -> None:
        """Set where and how to connect; the connection is made by the network loop."""
        broker = self.config.broker
        properties = None
        if self.config.shared_group is not None:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            properties = Properties(PacketTypes.CONNECT)
            # Keep the session (MQTT 5's persistence); an ending one lasts as long as this
            # connection.
            properties.SessionExpiryInterval = 0 if self.ending else 0xFFFFFFFF
        self.client.connect_async(
            broker.host,
            broker.port,
            keepalive=KEEPALIVE_SECONDS,
            clean_start=(
                self.ending if properties is not None else self._mqtt.MQTT_CLEAN_START_FIRST_ONLY
            ),
            properties=properties,
        )

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.inbox.put(None)

    def ack(self, batch: list[Incoming]) -> None:
        """PUBACK, in order, what came on the current connection; older ones the broker re-sends."""
        for incoming in batch:
            if incoming.generation == self.generation:
                self.client.ack(incoming.mid, 1)

    # -- paho's thread -------------------------------------------------------

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the gateway's %s lane: %s", self.name, reason_code)
            return
        self.generation += 1
        self.session_present = bool(flags.session_present)
        # Subscribe before dropping the old filters: a message published in between matches one
        # or both (the store deduplicates), never neither.
        if self.subscriptions:
            _, self._subscribe_mid = client.subscribe([(topic, 1) for topic in self.subscriptions])
        else:
            self.connected.set()
        if self.legacy:
            _, self._unsubscribe_mid = client.unsubscribe(self.legacy)
        else:
            self.unsubscribed.set()

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: int, reason_codes: Any, properties: Any
    ) -> None:
        if mid != self._subscribe_mid:
            return
        pairs = zip(self.subscriptions, reason_codes, strict=False)
        refused = [topic for topic, code in pairs if code.is_failure]
        if refused:  # the broker's ACL: the gateway would miss these kinds; /health says so
            log.error(
                "broker refused the %s lane's subscription to %s: check the gateway user's ACL",
                self.name,
                ", ".join(refused),
            )
            return
        self.connected.set()
        log.info(
            "%s lane connected to %s:%d as %s, subscribed to %s",
            self.name,
            self.config.broker.host,
            self.config.broker.port,
            self.client_id,
            ", ".join(self.subscriptions),
        )

    def _on_unsubscribe(
        self, client: Any, userdata: Any, mid: int, reason_codes: Any, properties: Any
    ) -> None:
        if mid == self._unsubscribe_mid:
            self.unsubscribed.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self.connected.clear()
        self.unsubscribed.clear()
        # Not a failure: we stopped; or a session taken over at start-up (no filters) ended.
        level = logging.INFO if self.subscriptions else logging.DEBUG
        level = logging.WARNING if reason_code.is_failure else level
        log.log(
            level,
            "%s lane (%s) disconnected from the broker: %s",
            self.name,
            self.client_id,
            reason_code,
        )

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        received_ms = int(time.time() * 1000)
        if self.gate is not None:
            self.gate.arrived()
        self.deliver(
            Incoming(message.topic, message.payload, received_ms, message.mid, self.generation)
        )


def run_ingest(
    lane: Lane,
    ingest: Ingest,
    on_changes: Callable[[set[str]], None],
    on_alarms: Callable[[set[str]], None],
    stopping: threading.Event,
) -> None:
    """A lane's ingest thread: batch, process, report, PUBACK; until a None in the inbox."""
    while not stopping.is_set():
        first = lane.inbox.get()
        if first is None:
            return
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = lane.inbox.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stopping.set()
                break
            batch.append(item)
        changes = ingest.process(batch)
        changes.hand_over(on_changes, on_alarms)
        if lane.gate is not None:  # after on_alarms: the live feed has the alarm frame queued
            lane.gate.done(len(batch))
        lane.ack(batch)
