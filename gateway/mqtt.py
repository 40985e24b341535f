"""The gateway's MQTT session and its ingest thread.

paho-mqtt with the gateway's user over TLS, QoS 1 and a persistent session
with a stable client id, so nothing published while the gateway is down is
lost. Manual acknowledgement: a message's PUBACK goes to the broker only
after its batch is committed, in the order the messages came
([MQTT-4.6.0-2]); a gateway killed before the commit gets them again. With
`shared_group` it subscribes to `$share/<group>/…` over MQTT 5 so several
gateways share the load.

Threads: paho's network thread only appends to the inbox; one ingest thread
takes whatever has arrived as a batch (one message when idle, thousands under
load), runs the pipeline, sends the PUBACKs and the commands, and hands the
changed unit ids to `on_changes`.
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
from protocol import codec, topics

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 30
MAX_BATCH = 5000
RECONNECT_MIN_SECONDS = 1
RECONNECT_MAX_SECONDS = 30


class GatewayLink:
    def __init__(self, config: GatewayConfig) -> None:
        from paho.mqtt import client as mqtt

        self.config = config
        self._mqtt = mqtt
        shared = config.shared_group is not None
        self.subscription = (
            f"$share/{config.shared_group}/{topics.UPLINK_SUBSCRIPTION}"
            if shared
            else topics.UPLINK_SUBSCRIPTION
        )
        protocol = mqtt.MQTTv5 if shared else mqtt.MQTTv311
        kwargs: dict[str, Any] = {} if shared else {"clean_session": False}
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=protocol,
            manual_ack=True,
            **kwargs,
        )
        broker = config.broker
        self.client.username_pw_set(broker.username, broker.password)
        self.client.tls_set(ca_certs=broker.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.reconnect_delay_set(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.inbox: queue.SimpleQueue[Incoming | None] = queue.SimpleQueue()
        self.generation = 0
        self.connected = threading.Event()

    def start(self) -> None:
        broker = self.config.broker
        properties = None
        if self.config.shared_group is not None:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 0xFFFFFFFF  # keep the session: MQTT 5's persistence
        self.client.connect_async(
            broker.host,
            broker.port,
            keepalive=KEEPALIVE_SECONDS,
            clean_start=False if properties is not None else self._mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.inbox.put(None)

    def send_command(self, command: Any) -> None:
        self.client.publish(codec.topic_of(command), codec.encode(command), qos=1)

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
            log.error("broker refused the gateway: %s", reason_code)
            return
        self.generation += 1
        client.subscribe(self.subscription, qos=1)
        self.connected.set()
        log.info(
            "connected to %s:%d, subscribed to %s",
            self.config.broker.host,
            self.config.broker.port,
            self.subscription,
        )

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self.connected.clear()
        log.warning("disconnected from the broker: %s", reason_code)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        received_ms = int(time.time() * 1000)
        self.inbox.put(
            Incoming(message.topic, message.payload, received_ms, message.mid, self.generation)
        )


def run_ingest(
    link: GatewayLink,
    ingest: Ingest,
    on_changes: Callable[[set[str]], None],
    stopping: threading.Event,
) -> None:
    """The ingest thread: batch, process, PUBACK, report; until a None in the inbox."""
    while not stopping.is_set():
        first = link.inbox.get()
        if first is None:
            return
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = link.inbox.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stopping.set()
                break
            batch.append(item)
        changed = ingest.process(batch)
        link.ack(batch)
        if changed:
            on_changes(changed)
