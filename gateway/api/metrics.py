"""`/metrics` for Prometheus: read from the gateway's counters at scrape time.

The ingest threads count in plain integers (IngestMetrics); this collector
turns them into metric families when Prometheus asks, so the pipeline pays
nothing per message for metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from gateway.api.context import ApiContext
from gateway.pauses import GENERATIONS

if TYPE_CHECKING:
    from gateway.api.live import Hub


class GatewayCollector(Collector):
    def __init__(self, context: ApiContext, hub: Hub) -> None:
        self.context = context
        self.hub = hub

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | SummaryMetricFamily]:
        m = self.context.metrics()
        received = CounterMetricFamily(
            "balise_messages_received", "MQTT messages taken from the broker"
        )
        received.add_metric([], m.received)
        yield received
        by_lane = CounterMetricFamily(
            "balise_lane_messages_received",
            "MQTT messages taken from the broker, by session (bulk, bulk1…: the bulk workers)",
            labels=["lane"],
        )
        for lane, count in sorted(self.context.lane_received().items()):
            by_lane.add_metric([lane], count)
        yield by_lane
        by_kind = CounterMetricFamily(
            "balise_messages_decoded", "messages that decoded, by kind", labels=["kind"]
        )
        for kind, count in sorted(m.by_kind.items()):
            by_kind.add_metric([kind], count)
        yield by_kind
        rejected = CounterMetricFamily(
            "balise_messages_rejected",
            "messages rejected as bad input, by reason",
            labels=["reason"],
        )
        for reason, count in sorted(m.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected
        stored = CounterMetricFamily("balise_records_stored", "records stored (new)")
        stored.add_metric([], m.stored)
        yield stored
        duplicates = CounterMetricFamily(
            "balise_records_duplicate", "records already stored (a re-send or a replay)"
        )
        duplicates.add_metric([], m.duplicates)
        yield duplicates
        latency = SummaryMetricFamily(
            "balise_store_write_seconds", "time in one store transaction (a batch)"
        )
        latency.add_metric([], count_value=m.batches, sum_value=m.store_seconds)
        yield latency
        last = GaugeMetricFamily(
            "balise_store_last_write_seconds", "time of the latest store transaction"
        )
        last.add_metric([], m.last_store_seconds)
        yield last
        units, online, stale = self.context.state.counts()
        for name, doc, value in (
            ("balise_units", "units the gateway knows", units),
            ("balise_units_online", "units online", online),
            ("balise_units_stale", "units silent too long", stale),
            ("balise_websocket_clients", "consoles on the live feed", len(self.hub.clients)),
            (
                "balise_mqtt_connected",
                "1 when every MQTT session (the bulk workers', the alarm lane's) is connected",
                self.context.mqtt_connected(),
            ),
        ):
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], float(value))
            yield gauge
        yield from self._gc()

    def _gc(self) -> Iterator[GaugeMetricFamily | SummaryMetricFamily]:
        pauses = self.context.gc_pauses
        if pauses is None:
            return
        summary = SummaryMetricFamily(
            "balise_gc_pause_seconds",
            "the garbage collector's pauses (every thread waits), by generation",
            labels=["generation"],
        )
        longest = GaugeMetricFamily(
            "balise_gc_longest_pause_seconds",
            "the longest garbage-collector pause since start, by generation",
            labels=["generation"],
        )
        for generation in GENERATIONS:
            label = [str(generation)]
            summary.add_metric(
                label, count_value=pauses.count[generation], sum_value=pauses.seconds[generation]
            )
            longest.add_metric(label, pauses.longest[generation])
        yield summary
        yield longest
        frozen = GaugeMetricFamily(
            "balise_gc_frozen_objects", "objects alive after start-up, which the collector skips"
        )
        frozen.add_metric([], pauses.frozen)
        yield frozen


def registry(context: ApiContext, hub: Hub) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(context, hub))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
