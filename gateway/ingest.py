"""The gateway's pipeline for a batch of received messages.

decode and validate (protocol/) → reject the bad ones, counted by reason,
never stopping the rest → store every record once by (unit, seq), in one
transaction (or, with `transaction_records`, in transactions of that many, so
that an urgent writer waits for one of them at most) → apply the new records
to the live state → acknowledge on each unit's `cmd` topic what is now stored
(status, SOS, batch items; duplicates too, since the unit re-sends because it
missed an ack). The caller sends the broker's PUBACKs after `process` returns,
so a crash before the commit leaves the messages with the broker, which
delivers them again.

The gateway runs one `Ingest` per MQTT lane (gateway/mqtt.py), each on its
own thread, sharing the store, the live state and the command ids; the alarm
lane's writes are `urgent`: the store lets them go before a waiting bulk
transaction. The bulk lane's `checkpoint` (gateway/precedence.py) pauses it
between slices of its work while an alarm is in progress. `process` says
which units changed, and which of them by an alarm (a new status or SOS), for
the live feed to send at once.

No MQTT here: received messages come in as `Incoming`, commands go out
through `send_command`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
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
# What the command room must see at once: a frame of its own on the live feed.
ALARM_KINDS = frozenset(("status", "sos"))
PAYLOAD_SHOWN_BYTES = 80
# With a checkpoint (the bulk lane), it is called every this many messages decoded, and
# before each store transaction and each slice of records applied to the live state.
CHECKPOINT_MESSAGES = 250


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
    batches: int = 0  # store transactions
    store_seconds: float = 0.0  # total time in store.write
    last_store_seconds: float = 0.0

    @classmethod
    def total(cls, parts: Iterable[IngestMetrics]) -> IngestMetrics:
        """The lanes' counters added up (last_store_seconds: the longer of their latest)."""
        total = cls()
        for part in parts:
            total.received += part.received
            total.stored += part.stored
            total.duplicates += part.duplicates
            total.rejected.update(part.rejected)
            total.by_kind.update(part.by_kind)
            total.batches += part.batches
            total.store_seconds += part.store_seconds
            total.last_store_seconds = max(total.last_store_seconds, part.last_store_seconds)
        return total

    def add(self, decoded: Decoded) -> None:
        """Count a decoded batch in."""
        self.received += decoded.received
        self.rejected.update(decoded.rejected)
        self.by_kind.update(decoded.by_kind)


@dataclass(frozen=True)
class Changes:
    """What a batch changed: unit ids, and those among them changed by an alarm."""

    units: set[str] = field(default_factory=set)
    alarms: set[str] = field(default_factory=set)

    def hand_over(
        self, on_changes: Callable[[set[str]], None], on_alarms: Callable[[set[str]], None]
    ) -> None:
        """Alarms to `on_alarms` (the live feed sends them at once), the rest to `on_changes`."""
        if self.alarms:
            on_alarms(self.alarms)
        if self.units - self.alarms:
            on_changes(self.units - self.alarms)


def command_ids() -> Iterator[int]:
    """Command ids that only grow, also across restarts (they start at the clock in ms): a unit
    ignores a repeated one. next() on a count is atomic, so threads may share one."""
    return itertools.count(int(time.time() * 1000) + 1)


class FutureTime(ProtocolError):
    """The message's time is too far ahead of the gateway's clock."""

    reason = "future_time"


@dataclass
class Decoded:
    """A batch decoded and validated: its records, what to acknowledge once they are
    stored, and the counts (picklable: the bulk lane's worker process sends it over)."""

    records: list[Record] = field(default_factory=list)
    to_ack: list[tuple[str, int]] = field(default_factory=list)
    received: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)


class Decoder:
    """protocol/ on received messages: records, or a rejection counted by reason and logged."""

    def __init__(self, max_future_s: float = MAX_FUTURE_S) -> None:
        self.max_future_ms = int(max_future_s * 1000)

    def decode(
        self, batch: Iterable[Incoming], checkpoint: Callable[[], None] = lambda: None
    ) -> Decoded:
        decoded = Decoded()
        records = decoded.records
        by_kind: dict[str, int] = {}
        for index, incoming in enumerate(batch):
            if index % CHECKPOINT_MESSAGES == 0:
                checkpoint()
            decoded.received += 1
            message = self._decode(incoming, decoded)
            if message is None:
                continue
            kind = message.KIND
            by_kind[kind] = by_kind.get(kind, 0) + 1
            if kind == "batch":
                items = _batch_records(message, incoming)
                records += items
                decoded.to_ack += [(r.unit, r.seq) for r in items]
                continue
            records.append(
                Record(
                    message.unit,
                    message.seq,
                    kind,
                    message.t_ms,
                    incoming.received_ms,
                    incoming.payload,
                    message,
                )
            )
            if kind in ACKED_KINDS:
                decoded.to_ack.append((message.unit, message.seq))
        decoded.by_kind.update(by_kind)
        return decoded

    def _decode(self, incoming: Incoming, decoded: Decoded) -> Any:
        """The message, or None once its rejection is counted and logged."""
        try:
            message = codec.decode(incoming.topic, incoming.payload)
            if message.KIND == "cmd":
                raise ProtocolError("a command on an uplink subscription")
            newest_ms = incoming.received_ms + self.max_future_ms
            timed = message.items if message.KIND == "batch" else (message,)
            for item in timed:
                if item.t_ms > newest_ms:
                    raise FutureTime(f"time {item.t_ms} is over {self.max_future_ms} ms ahead")
        except ProtocolError as exc:
            decoded.rejected[exc.reason] += 1
            shown = incoming.payload[:PAYLOAD_SHOWN_BYTES]
            log.warning("rejected %s: %s (%s): %r", incoming.topic, exc.reason, exc, shown)
            return None
        return message


class Ingest:
    def __init__(
        self,
        store: Store,
        state: LiveState,
        send_command: Callable[[Command], None],
        max_future_s: float = MAX_FUTURE_S,
        *,
        cmd_ids: Iterator[int] | None = None,
        urgent: bool = False,
        transaction_records: int | None = None,
        checkpoint: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.state = state
        self.send_command = send_command
        self.decoder = Decoder(max_future_s)
        self.urgent = urgent
        self.transaction_records = transaction_records
        self.checkpoint = checkpoint
        self.metrics = IngestMetrics()
        # Shared by both lanes and the HTTP API (see command_ids()).
        self._cmd_ids = cmd_ids if cmd_ids is not None else command_ids()

    def process(self, batch: Iterable[Incoming]) -> Changes:
        """Decode, store, apply and acknowledge a batch; say which units changed."""
        return self.commit(self.decoder.decode(batch, self.checkpoint))

    def commit(self, decoded: Decoded) -> Changes:
        """Store, apply and acknowledge what a `Decoder` made of a batch (here or in the
        bulk lane's worker process); say which units changed."""
        self.metrics.add(decoded)
        records = decoded.records
        if not records:
            return Changes()
        new = self._write(records)
        changed: set[str] = set()
        size = self.transaction_records or len(new) or 1
        for start in range(0, len(new), size):
            self.checkpoint()
            changed |= self.state.apply(new[start : start + size])
        self._acknowledge(decoded.to_ack)
        return Changes(changed, {r.unit for r in new if r.kind in ALARM_KINDS})

    def _write(self, records: list[Record]) -> list[Record]:
        size = self.transaction_records or len(records)
        new: list[Record] = []
        for start in range(0, len(records), size):
            self.checkpoint()
            started = time.perf_counter()
            new += self.store.write(records[start : start + size], urgent=self.urgent)
            elapsed = time.perf_counter() - started
            self.metrics.batches += 1
            self.metrics.store_seconds += elapsed
            self.metrics.last_store_seconds = elapsed
        self.metrics.stored += len(new)
        self.metrics.duplicates += len(records) - len(new)
        return new

    def command_id(self) -> int:
        return next(self._cmd_ids)

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


def _batch_records(batch: Any, incoming: Incoming) -> list[Record]:
    """A backlog batch as records, one per item, each re-encoded as the `pos` it stands for."""
    received_ms = incoming.received_ms
    return [
        Record(item.unit, item.seq, "pos", item.t_ms, received_ms, codec.encode(item), item)
        for item in batch.items
    ]


def _ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted [first, last] runs of the given seqs."""
    ranges: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges
