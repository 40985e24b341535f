"""The gateway's MQTT sessions together: the bulk lane's workers and the alarm lane.

Commands to units (acks, SOS acks, assignments) go out on the alarm lane's session, ahead of
the bulk lane's stream of PUBACKs. A module of its own: gateway/bulk.py builds on
gateway/mqtt.py's `Lane`, and this holds both.
"""

from __future__ import annotations

from typing import Any

from gateway.bulk import BulkLane
from gateway.config import GatewayConfig
from gateway.mqtt import ALARM_CLIENT_SUFFIX, ALARM_KINDS, Lane, every_filter
from gateway.precedence import AlarmGate
from protocol import codec


class GatewayLink:
    """The bulk lane's workers and the alarm lane; commands to units go out on the alarm lane."""

    def __init__(self, config: GatewayConfig, gate: AlarmGate | None = None) -> None:
        self.config = config
        self.bulk = [BulkLane(config, index) for index in range(config.bulk_workers)]
        alarm_id = config.client_id + ALARM_CLIENT_SUFFIX
        # Every gateway of a shared_group takes every status and SOS (docs/gateway.md): an
        # alarm session that shared them drops its $share filters.
        legacy = every_filter(config.client_id, config.shared_group)
        self.alarm = Lane("alarm", config, alarm_id, ALARM_KINDS, legacy=legacy, gate=gate)
        self.lanes: tuple[BulkLane | Lane, ...] = (*self.bulk, self.alarm)

    def start(self) -> None:
        for lane in self.lanes:
            lane.start()

    def stop(self) -> None:
        for lane in self.lanes:
            lane.stop()

    def wake(self) -> None:
        """Make every ingest thread return (the bulk workers stop, a None in the alarm inbox)."""
        for bulk in self.bulk:
            bulk.wake()
        self.alarm.inbox.put(None)

    def is_connected(self) -> bool:
        return all(lane.connected.is_set() for lane in self.lanes)

    def send_command(self, command: Any) -> None:
        self.alarm.client.publish(codec.topic_of(command), codec.encode(command), qos=1)
