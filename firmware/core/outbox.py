"""The durable, bounded outbox every uplink message goes through.

The core adds each Position, StatusChange, Sos and Health (already carrying
its seq), asks for the next publishes in priority order, and reports the
broker's PUBACKs. A status or an SOS is in the journal (synced) before `add`
returns; positions and health stay in RAM while the link works and go to the
journal only when the link drops or when they are still unacknowledged
`flush_after_ms` after being added -- so a working link costs no SD-card
write per position. When more than `capacity` records are held, old positions
are thinned; a status or an SOS is never dropped.

The journal is one append-only file of frames, each with its length and a
CRC32, so recovery after a power cut drops a torn tail (and skips a damaged
frame in the middle) instead of crashing. Payloads are the protocol's own
encoded bytes. When most of the journal is acknowledged records, it is
rewritten atomically. The format and the policy are in docs/outbox.md.

Every record is also kept in RAM, as its encoded payload only (about 360
bytes a record on MicroPython with a 128-byte payload: keeping the message
object would cost 2.5 times that); messages are decoded again when they are handed out, so
`next_publishes` returns equal messages, not the very objects added. The
journal is for surviving a power cut, not for holding more than RAM does:
size `capacity` to the unit's memory. Imports protocol/ only.
"""

import binascii
import struct

from protocol import codec, topics
from protocol.errors import ProtocolError
from protocol.messages import Batch

JOURNAL = "outbox.journal"

# Frame: magic, type, body length (big-endian u16), body, CRC32 (big-endian)
# of everything before it. See docs/outbox.md for the diagram.
MAGIC = 0xBA
HEADER_BYTES = 4
CRC_BYTES = 4
FRAME_OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES
MAX_BODY_BYTES = 4096
DONE_CHUNK_BYTES = 2048
# Frame types, ASCII so a hex dump reads: an added record of each kind, and
# "done" (records the broker has; the body lists their seqs as ranges).
ADD_TYPES = {"pos": 0x70, "status": 0x73, "sos": 0x61, "health": 0x68}  # p s a h
DONE = 0x64  # d
KIND_OF_TYPE = {code: kind for kind, code in ADD_TYPES.items()}

# Kept in RAM while the link is up; the others are synced before add returns.
MEMORY_KINDS = ("pos", "health")
DEFAULT_CAPACITY = 5000
DEFAULT_FLUSH_AFTER_MS = 10000
# Below this size the journal is never rewritten (rewrites wear the card too).
DEFAULT_COMPACT_MIN_BYTES = 16384


# -- the journal format --------------------------------------------------------


def frame(type_code, body):
    """One journal frame around `body` (at most MAX_BODY_BYTES)."""
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(
            "a journal frame body is at most %d bytes, got %d" % (MAX_BODY_BYTES, len(body))
        )
    head = bytes((MAGIC, type_code, len(body) >> 8, len(body) & 0xFF))
    crc = binascii.crc32(body, binascii.crc32(head)) & 0xFFFFFFFF
    return head + body + struct.pack(">I", crc)


def read_frame(data, offset):
    """(type, body, end offset) of a valid frame at `offset`, or None."""
    if len(data) - offset < FRAME_OVERHEAD_BYTES or data[offset] != MAGIC:
        return None
    type_code = data[offset + 1]
    if type_code != DONE and type_code not in KIND_OF_TYPE:
        return None
    length = (data[offset + 2] << 8) | data[offset + 3]
    end = offset + HEADER_BYTES + length + CRC_BYTES
    if length > MAX_BODY_BYTES or end > len(data):
        return None
    crc = binascii.crc32(data[offset : end - CRC_BYTES]) & 0xFFFFFFFF
    if struct.unpack(">I", data[end - CRC_BYTES : end])[0] != crc:
        return None
    return type_code, data[offset + HEADER_BYTES : end - CRC_BYTES], end


def parse_journal(data):
    """([(type, body, frame length)], bytes skipped): skips damage, never raises."""
    frames = []
    skipped = 0
    offset = 0
    while offset < len(data):
        found = read_frame(data, offset)
        if found is None:
            # Resynchronise on the next magic byte: a damaged frame in the
            # middle costs that frame, not everything after it.
            following = data.find(bytes((MAGIC,)), offset + 1)
            following = len(data) if following < 0 else following
            skipped += following - offset
            offset = following
            continue
        type_code, body, end = found
        frames.append((type_code, body, end - offset))
        offset = end
    return frames, skipped


def ranges_text(seqs):
    """Sorted seqs as ASCII ranges, `3-7,9,12-13`."""
    parts = []
    seqs = sorted(seqs)
    start = 0
    for index in range(1, len(seqs) + 1):
        if index == len(seqs) or seqs[index] != seqs[index - 1] + 1:
            first, last = seqs[start], seqs[index - 1]
            parts.append(str(first) if first == last else "%d-%d" % (first, last))
            start = index
    return ",".join(parts)


def parse_ranges(body):
    """[(first, last)] from ranges_text's output, or None if `body` is not that."""
    ranges = []
    try:
        for part in bytes(body).decode().split(","):
            first, _, last = part.partition("-")
            first = int(first)
            last = int(last) if last else first
            if first < 0 or last < first:
                return None
            ranges.append((first, last))
    except (ValueError, UnicodeError):
        return None
    return ranges


def _done_frames(seqs):
    """Done frames for `seqs`, each body under DONE_CHUNK_BYTES."""
    frames = []
    text = ranges_text(seqs)
    while text:
        cut = len(text)
        if cut > DONE_CHUNK_BYTES:
            cut = text.rfind(",", 0, DONE_CHUNK_BYTES)
        frames.append(frame(DONE, text[:cut].encode()))
        text = text[cut + 1 :]
    return frames


def _by_seq(record):
    return record.seq


# -- the outbox ----------------------------------------------------------------


class _Record:
    """One message held by the outbox, as its encoded payload (RAM is scarce on a Pico)."""

    def __init__(self, seq, kind, payload, tick_ms):
        self.seq = seq
        self.kind = kind
        self.payload = payload  # the encoded bytes: journal body, batch sizing, publishing
        self.added_ms = tick_ms
        self.frame_bytes = 0  # size of its frame in the journal; 0: only in RAM
        self.token = None  # the publish it is in flight in


class Outbox:
    """Durable, bounded, prioritised queue of uplink messages.

    `unit` is the unit id; `storage` a firmware.core.storage object.
    `capacity` bounds the records held; `flush_after_ms` is how long a
    position may wait in RAM; the journal is rewritten once it is at least
    `compact_min_bytes` and mostly acknowledged records; `max_batch_bytes`
    caps a Batch payload (a Pico cannot build a 32 KB string in its
    fragmented heap: give it a few KB; a batch always holds at least one
    position). The constructor replays the journal; `recovered_records` and
    `recovered_dropped_bytes` say what it found. Counters for health and
    logs: `thinned` (positions dropped for capacity), `superseded` (older
    health dropped), `storage_errors` and `last_storage_error` (OSErrors
    from a failing card: records then stay in RAM and are still sent),
    `compactions`.
    """

    def __init__(
        self,
        unit,
        storage,
        capacity=DEFAULT_CAPACITY,
        flush_after_ms=DEFAULT_FLUSH_AFTER_MS,
        compact_min_bytes=DEFAULT_COMPACT_MIN_BYTES,
        max_batch_bytes=codec.MAX_BATCH_PAYLOAD_BYTES,
    ):
        self.unit = topics.check_unit_id(unit)
        self._topics = {kind: topics.topic(unit, kind) for kind in ADD_TYPES}
        if capacity < 1:
            raise ValueError("capacity must be at least 1, got %r" % (capacity,))
        self.capacity = capacity
        self.flush_after_ms = flush_after_ms
        self.compact_min_bytes = compact_min_bytes
        if not 0 < max_batch_bytes <= codec.MAX_BATCH_PAYLOAD_BYTES:
            raise ValueError(
                "max_batch_bytes must be from 1 to %d, got %r"
                % (codec.MAX_BATCH_PAYLOAD_BYTES, max_batch_bytes)
            )
        self.max_batch_bytes = max_batch_bytes
        self._storage = storage
        self._records = {}  # seq -> _Record
        self._unsaved = {}  # seq -> _Record not in the journal yet
        self._tokens = {}  # token -> seqs of the records in that publish
        self._next_token = 1
        self._journal_bytes = 0  # the journal file's size
        self._live_bytes = 0  # bytes of its frames whose records are still held
        self._retry_flush_ms = None  # type: int | None  # after a failed flush, not before this tick
        self.thinned = 0
        self.superseded = 0
        self.storage_errors = 0
        self.last_storage_error = None  # type: OSError | None
        self.compactions = 0
        self.recovered_records = 0
        self.recovered_dropped_bytes = 0
        self._recover()

    # -- the API the core uses --------------------------------------------------

    def add(self, message, tick_ms):
        """Take an uplink message; a status or SOS is synced to the journal before this returns."""
        kind = getattr(message, "KIND", None)
        if kind not in ADD_TYPES:
            raise TypeError(
                "the outbox takes pos, status, sos and health messages, not %r" % (message,)
            )
        if message.unit != self.unit:
            raise ValueError("message of unit %r in the outbox of %r" % (message.unit, self.unit))
        if message.seq in self._records:
            return  # already held (a re-send of the same seq)
        record = _Record(message.seq, kind, codec.encode(message), tick_ms)
        self._records[record.seq] = record
        self._unsaved[record.seq] = record
        if kind == "health":
            self._supersede_health(record)
        if kind not in MEMORY_KINDS:
            self._save([record], tick_ms)
        if len(self._records) > self.capacity:
            self._thin()

    def tick(self, tick_ms):
        """Housekeeping: journal the RAM records once the oldest has waited flush_after_ms."""
        if not self._unsaved:
            return
        if self._retry_flush_ms is not None and tick_ms < self._retry_flush_ms:
            return
        oldest_ms = min([record.added_ms for record in self._unsaved.values()])
        if tick_ms - oldest_ms >= self.flush_after_ms:
            self._save(self._unsaved.values(), tick_ms)

    def link_down(self, tick_ms):
        """The link is gone: journal the RAM records; everything in flight is pending again."""
        self._tokens = {}
        for record in self._records.values():
            record.token = None
        if self._unsaved:
            self._save(self._unsaved.values(), tick_ms)

    def next_publishes(self, max_count):
        """Up to `max_count` (token, message) pairs to publish now, in priority order.

        SOS (all, oldest first), then status changes (all, oldest first), then
        the newest position alone, then the newest health (older pending health
        is dropped), then the older positions, oldest first, in Batch messages.
        """
        publishes = []
        if max_count <= 0:
            return publishes
        # The core asks on every tick: scan, and sort only what is pending.
        waiting = [record for record in self._records.values() if record.token is None]
        waiting.sort(key=_by_seq)
        pending = {"sos": [], "status": [], "pos": [], "health": []}
        for record in waiting:
            pending[record.kind].append(record)
        for record in pending["sos"] + pending["status"]:
            if len(publishes) >= max_count:
                return publishes
            publishes.append(self._publish([record]))
        positions = pending["pos"]
        if positions and len(publishes) < max_count:
            publishes.append(self._publish([positions.pop()]))
        healths = pending["health"]
        if len(healths) > 1:
            self.superseded += len(healths) - 1
            self._forget(healths[:-1])
        if healths and len(publishes) < max_count:
            publishes.append(self._publish(healths[-1:]))
        start = 0
        while start < len(positions) and len(publishes) < max_count:
            end = self._batch_end(positions, start)
            publishes.append(self._publish(positions[start:end], True))
            start = end
        return publishes

    def on_puback(self, token):
        """The broker has the publish `token`: its records leave. False if the token is unknown."""
        seqs = self._tokens.pop(token, None)
        if seqs is None:
            return False
        done = []
        for seq in seqs:
            record = self._records.get(seq)
            if record is not None and record.token == token:
                done.append(record)
        self._forget(done)
        return True

    def highest_seq(self):
        """The highest seq held (pending or in flight), or None when empty."""
        return max(self._records) if self._records else None

    def depth(self):
        """Records waiting: pending and in flight."""
        return len(self._records)

    def held_seqs(self):
        """The seqs held now (pending or in flight): what a journal replay must give back."""
        return set(self._records)

    # -- publishing -----------------------------------------------------------------

    def _message(self, record):
        # Cannot fail: every payload held was encoded or checked by the codec.
        return codec.decode(self._topics[record.kind], record.payload)

    def _publish(self, records, batch=False):
        if batch:
            message = Batch(unit=self.unit, items=[self._message(r) for r in records])
        else:
            message = self._message(records[0])
        token = self._next_token
        self._next_token += 1
        self._tokens[token] = [record.seq for record in records]
        for record in records:
            record.token = token
        return token, message

    def _batch_end(self, positions, start):
        """End index of the batch starting at `start`: within the codec's item and byte limits."""
        # A pos payload is written as it goes into a batch: no `v` or `u` since 1.1. A record
        # journalled by an older firmware still has them, and is counted a little too wide.
        size = len('{"ps":[]}')
        end = start
        while end < len(positions) and end - start < codec.MAX_BATCH_ITEMS:
            item = len(positions[end].payload) + (1 if end > start else 0)
            if size + item > self.max_batch_bytes:
                break
            size += item
            end += 1
        return max(end, start + 1)

    # -- keeping within bounds ------------------------------------------------------

    def _supersede_health(self, newest):
        older = [r for r in self._records.values() if r.kind == "health" and r.token is None]
        older = [r for r in older if r is not newest]
        if older:
            self.superseded += len(older)
            self._forget(older)

    def _thin(self):
        # Drop every second record among the oldest half of the pending
        # positions (and health), keeping the oldest: history gets sparser
        # the older it is, recent positions stay dense. Status and SOS are
        # never dropped; if only they are left, the outbox goes over capacity.
        while len(self._records) > self.capacity:
            candidates = [
                r for r in self._records.values() if r.kind in MEMORY_KINDS and r.token is None
            ]
            if not candidates:
                return
            candidates.sort(key=_by_seq)
            victims = candidates[: len(candidates) // 2][1::2] or candidates[:1]
            self.thinned += len(victims)
            self._forget(victims)

    # -- the journal ----------------------------------------------------------------

    def _save(self, records, tick_ms):
        """Append `records` to the journal in one synced write."""
        records = sorted(records, key=_by_seq)
        frames = [frame(ADD_TYPES[record.kind], record.payload) for record in records]
        if not self._write(b"".join(frames), True):
            self._retry_flush_ms = tick_ms + self.flush_after_ms
            return
        self._retry_flush_ms = None
        for index, record in enumerate(records):  # no zip(strict=) on MicroPython
            record.frame_bytes = len(frames[index])
            self._live_bytes += record.frame_bytes
            self._unsaved.pop(record.seq, None)

    def _forget(self, records):
        """Records leave the outbox; those in the journal get a (not synced) done mark."""
        journaled = []
        for record in records:
            self._records.pop(record.seq, None)
            self._unsaved.pop(record.seq, None)
            if record.frame_bytes:
                journaled.append(record.seq)
                self._live_bytes -= record.frame_bytes
                record.frame_bytes = 0
        if journaled:
            # Not synced: a lost done mark only means a re-send after a power
            # cut, and the gateway stores each (unit, seq) once.
            self._write(b"".join(_done_frames(journaled)), False)
            self._maybe_compact()

    def _write(self, data, sync):
        try:
            self._storage.append(JOURNAL, data, sync)
        except OSError as exc:
            self._storage_failed(exc)
            return False
        self._journal_bytes += len(data)
        return True

    def _storage_failed(self, exc):
        # A dead card must not stop an SOS: the records stay in RAM and are
        # still sent; the runtime reports the count in its health messages.
        self.storage_errors += 1
        self.last_storage_error = exc

    def _maybe_compact(self):
        if (
            self._journal_bytes >= self.compact_min_bytes
            and self._live_bytes * 2 < self._journal_bytes
        ):
            self._compact()

    def _compact(self):
        """Rewrite the journal atomically with only the records still held."""
        records = sorted([r for r in self._records.values() if r.frame_bytes], key=_by_seq)
        frames = [frame(ADD_TYPES[record.kind], record.payload) for record in records]
        data = b"".join(frames)
        try:
            self._storage.replace(JOURNAL, data)
        except OSError as exc:
            self._storage_failed(exc)
            return
        self.compactions += 1
        self._journal_bytes = self._live_bytes = len(data)
        for index, record in enumerate(records):
            record.frame_bytes = len(frames[index])

    def _recover(self):
        data = self._storage.read(JOURNAL)
        if data is None:
            return
        data = bytes(data)
        frames, dropped = parse_journal(data)
        for type_code, body, length in frames:
            if type_code == DONE:
                dropped += self._replay_done(body, length)
            else:
                dropped += self._replay_add(KIND_OF_TYPE[type_code], body, length)
        self._journal_bytes = len(data)
        self._live_bytes = sum([record.frame_bytes for record in self._records.values()])
        self.recovered_records = len(self._records)
        self.recovered_dropped_bytes = dropped
        if len(self._records) > self.capacity:  # a smaller capacity than before the restart
            self._thin()
        if dropped:
            self._compact()  # leave no damage for new frames to follow
        else:
            self._maybe_compact()

    def _replay_add(self, kind, body, length):
        """Bytes dropped: 0, or the frame's length if its payload does not decode."""
        try:
            message = codec.decode(topics.topic(self.unit, kind), body)
        except ProtocolError:
            return length
        if message.seq not in self._records:
            record = _Record(message.seq, kind, body, 0)
            record.frame_bytes = length
            self._records[record.seq] = record
        return 0

    def _replay_done(self, body, length):
        ranges = parse_ranges(body)
        if ranges is None:
            return length
        for first, last in ranges:
            if last - first < len(self._records):
                seqs = range(first, last + 1)
            else:  # a wide range: look at the records instead of every seq in it
                seqs = [seq for seq in self._records if first <= seq <= last]
            for seq in seqs:
                self._records.pop(seq, None)
        return 0
