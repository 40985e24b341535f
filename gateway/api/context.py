"""What the API works with: the gateway's running parts, passed in, never imported."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.config import GatewayConfig
from gateway.ingest import IngestMetrics
from gateway.pauses import GcPauses
from gateway.room import RoomStore
from gateway.state import LiveState
from gateway.store import Store


@dataclass
class ApiContext:
    config: GatewayConfig
    state: LiveState
    store: Store
    room: RoomStore
    send_command: Callable[[Any], None]  # a protocol Command onto the unit's cmd topic
    command_id: Callable[[], int]
    metrics: Callable[[], IngestMetrics]  # the ingest counters, added up over the lanes
    mqtt_connected: Callable[[], bool]
    # True while an alarm is on its way to the live feed: deltas wait (gateway/precedence.py).
    alarms_pending: Callable[[], bool] = field(default=lambda: False)
    # Called with unit ids (or incident ids, as "incident:<id>") that changed, from any thread.
    changed: Callable[[set[str]], None] = field(default=lambda ids: None)
    # The garbage collector's pauses in this process (gateway/pauses.py), for /metrics.
    gc_pauses: GcPauses | None = None
    # Messages taken from the broker by each MQTT session (lane): each bulk worker's share.
    lane_received: Callable[[], dict[str, int]] = field(default=lambda: {})
