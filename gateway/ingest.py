"""The gateway's pipeline for a batch of received messages.

decode and validate (protocol/) → reject the bad ones, counted by reason,
never stopping the rest → store every record once by (unit, seq), in one
transaction → apply the new records to the live state → acknowledge on each
unit's `cmd` topic what is now stored (status, SOS, batch items; duplicates
too, since the unit re-sends because it missed an ack). The caller sends the
broker's PUBACKs after `process` returns, so a crash before the commit leaves
the messages with the broker, which delivers them again.

No MQTT here: received messages come in as `Incoming`, commands go out
through `send_command`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.state import LiveState
from gateway.store import Record, Store
from protocol import codec
from protocol.errors import ProtocolError
from protocol.messages import Ack, Command

log = logging.getLogger(__name__)

# GPS time this far past the gateway's clock is bad input, not a fast clock.
MAX_FUTURE_S = 300.0
# What a unit wants acknowledged once stored (positions leave its outbox on the
# broker's PUBACK, except backlog batches).
ACKED_KINDS = ("status", "sos")
PAYLOAD_SHOWN_BYTES = 80


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    received_ms: int
    mid: int = 0  # the broker's message id, for the PUBACK after commit
    generation: int = 0  # which MQTT connection it came on


@dataclass
class IngestMetrics:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)  # decoded messages, by kind
    batches: int = 0
    store_seconds: float = 0.0  # total time in store.write
    last_store_seconds: float = 0.0


class FutureTime(ProtocolError):
    """The message's time is too far ahead of the gateway's clock."""

    reason = "future_time"


class Ingest:
    def __init__(
        self,
        store: Store,
        state: LiveState,
        send_command: Callable[[Command], None],
        max_future_s: float = MAX_FUTURE_S,
    ) -> None:
        self.store = store
        self.state = state
        self.send_command = send_command
        self.max_future_ms = int(max_future_s * 1000)
        self.metrics = IngestMetrics()
        # Command ids only grow, also across restarts: a unit ignores a repeated one.
        # next() on a count is atomic: the ingest thread and the HTTP API both take ids.
        self._cmd_ids = itertools.count(int(time.time() * 1000) + 1)

    def process(self, batch: Iterable[Incoming]) -> set[str]:
        """Store, apply and acknowledge a batch; return the ids of the units that changed."""
        records: list[Record] = []
        to_ack: list[tuple[str, int]] = []
        for incoming in batch:
            self.metrics.received += 1
            decoded = self._decode(incoming)
            records += decoded
            to_ack += [(r.unit, r.seq) for r in decoded if _wants_ack(r, incoming.topic)]
        if not records:
            return set()
        started = time.perf_counter()
        new = self.store.write(records)
        elapsed = time.perf_counter() - started
        self.metrics.batches += 1
        self.metrics.store_seconds += elapsed
        self.metrics.last_store_seconds = elapsed
        self.metrics.stored += len(new)
        self.metrics.duplicates += len(records) - len(new)
        changed = self.state.apply(new)
        self._acknowledge(to_ack)
        return changed

    def command_id(self) -> int:
        return next(self._cmd_ids)

    def _decode(self, incoming: Incoming) -> list[Record]:
        try:
            message = codec.decode(incoming.topic, incoming.payload)
            if message.KIND == "cmd":
                raise ProtocolError("a command on an uplink subscription")
            self.metrics.by_kind[message.KIND] += 1
            records = _records(message, incoming)
            for record in records:
                if record.t_ms > incoming.received_ms + self.max_future_ms:
                    raise FutureTime(f"time {record.t_ms} is over {self.max_future_ms} ms ahead")
        except ProtocolError as exc:
            self.metrics.rejected[exc.reason] += 1
            shown = incoming.payload[:PAYLOAD_SHOWN_BYTES]
            log.warning("rejected %s: %s (%s): %r", incoming.topic, exc.reason, exc, shown)
            return []
        return records

    def _acknowledge(self, stored: list[tuple[str, int]]) -> None:
        seqs_by_unit: dict[str, list[int]] = {}
        for unit, seq in stored:
            seqs_by_unit.setdefault(unit, []).append(seq)
        for unit, seqs in seqs_by_unit.items():
            ranges = _ranges(seqs)
            for start in range(0, len(ranges), codec.MAX_ACK_RANGES):
                chunk = ranges[start : start + codec.MAX_ACK_RANGES]
                ack = Ack(
                    unit=unit, cmd_id=self.command_id(), t_ms=int(time.time() * 1000), ranges=chunk
                )
                self.send_command(ack)


def _records(message: Any, incoming: Incoming) -> list[Record]:
    """A message as records: one, or one per item of a batch."""
    if message.KIND == "batch":
        return [
            Record(
                item.unit,
                item.seq,
                "pos",
                item.t_ms,
                incoming.received_ms,
                codec.encode(item),
                item,
            )
            for item in message.items
        ]
    return [
        Record(
            message.unit,
            message.seq,
            message.KIND,
            message.t_ms,
            incoming.received_ms,
            incoming.payload,
            message,
        )
    ]


def _wants_ack(record: Record, topic: str) -> bool:
    return record.kind in ACKED_KINDS or topic.endswith("/batch")


def _ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted [first, last] runs of the given seqs."""
    ranges: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges
