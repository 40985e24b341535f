"""The unit's sequence numbers: one increasing sequence, never reused.

Every uplink message carries a `q` that the gateway stores once per (unit, q),
so a number handed out twice would make the gateway drop a real message as a
duplicate. Numbers are reserved in blocks: before the first number of a block
is handed out, the block's ceiling (the first number *not* reserved) is
written durably. After a reboot or a power cut the store starts at the stored
ceiling, so the unused rest of the last block is skipped (at most `block - 1`
numbers per restart: gaps in `q` are normal and mean nothing).

The ceiling is kept in two files, each a line with a CRC32, written one after
the other with `storage.replace`; the larger valid copy wins, so one damaged
or half-written copy costs nothing. States after loading:

- "ok": at least one valid copy; numbers continue from its ceiling;
- "fresh": neither file exists (a new unit): numbers start at 0;
- "unreadable": a file exists but no copy is valid. The store refuses to
  guess: `next()` raises StateError until the runtime calls
  `restart_above(floor)` with a floor above every number the unit can have
  used -- trusted GPS time in ms is one (see docs/outbox.md).

Imports only firmware.core.errors and the standard library that MicroPython has.
"""

import binascii

from firmware.core.errors import StateError

SEQ_FILES = ("seq.a", "seq.b")
DEFAULT_BLOCK = 1000
# The protocol's largest seq (2**53 - 1, what JavaScript consoles keep exact).
MAX_SEQ = 9007199254740991
_HEADER = "balise-seq 1"


def encode_ceiling(ceiling):
    """The bytes of one copy: `balise-seq 1 <ceiling> <crc32 hex>\\n`."""
    text = "%s %d" % (_HEADER, ceiling)
    return ("%s %08x\n" % (text, binascii.crc32(text.encode()) & 0xFFFFFFFF)).encode()


def decode_ceiling(data):
    """The ceiling in one copy, or None if the copy is damaged."""
    try:
        text = bytes(data).decode()
    except UnicodeError:
        return None
    if not text.endswith("\n"):
        return None
    body, _, crc_text = text[:-1].rpartition(" ")
    parts = body.split(" ")
    if len(parts) != 3 or " ".join(parts[:2]) != _HEADER or len(crc_text) != 8:
        return None
    try:
        crc = int(crc_text, 16)
        ceiling = int(parts[2])
    except ValueError:
        return None
    if crc != binascii.crc32(body.encode()) & 0xFFFFFFFF or not 0 <= ceiling <= MAX_SEQ:
        return None
    return ceiling


class SequenceStore:
    """Hands out the unit's sequence numbers; `storage` is a firmware.core.storage object."""

    def __init__(self, storage, block=DEFAULT_BLOCK):
        if type(block) is not int or block < 1:
            raise ValueError("block must be a positive integer, got %r" % (block,))
        self._storage = storage
        self.block = block
        self.damaged_copies = 0  # copies found present but invalid at start
        self.storage_errors = 0  # reservations that reached no copy on disk
        self.last_storage_error = None
        ceilings = []
        present = 0
        for name in SEQ_FILES:
            data = storage.read(name)
            if data is None:
                continue
            present += 1
            ceiling = decode_ceiling(data)
            if ceiling is None:
                self.damaged_copies += 1
            else:
                ceilings.append(ceiling)
        if ceilings:
            self.state = "ok"
            self._next = max(ceilings)
        elif present:
            self.state = "unreadable"
            self._next = 0  # never handed out: next() refuses in this state
        else:
            self.state = "fresh"
            self._next = 0
        # Nothing of a new block is reserved yet: the first next() writes one.
        self.ceiling = self._next

    def next(self):
        """The next sequence number; its block is on disk before it is returned."""
        if self.state == "unreadable":
            raise StateError(
                "the sequence files %s are damaged: refusing to guess a sequence number; "
                "call restart_above() with a floor such as GPS time in ms" % ", ".join(SEQ_FILES)
            )
        if self._next >= self.ceiling:
            self._reserve(self._next + self.block)
        number = self._next
        self._next += 1
        return number

    def restart_above(self, floor):
        """Continue above `floor` (never lower than now); clears the "unreadable" state."""
        if type(floor) is not int or floor < 0:
            raise ValueError("floor must be a non-negative integer, got %r" % (floor,))
        self._next = max(self._next, floor + 1)
        self.ceiling = self._next  # forces a fresh reservation before the next number
        self.state = "ok"

    def _reserve(self, ceiling):
        if ceiling > MAX_SEQ:
            raise StateError(
                "sequence numbers exhausted: ceiling %d is over %d" % (ceiling, MAX_SEQ)
            )
        data = encode_ceiling(ceiling)
        written = 0
        problems = []
        for name in SEQ_FILES:
            try:
                self._storage.replace(name, data)
                written += 1
            except OSError as exc:
                problems.append("%s: %s" % (name, exc))
        # One durable copy is enough: loading takes the larger valid copy. With
        # none, a dead card must not stop the unit (an SOS needs a number): go
        # on in RAM and count it; at the next boot the unit restarts above the
        # clock and its outbox (Unit.start), never below what it used.
        if not written:
            self.storage_errors += 1
            self.last_storage_error = "; ".join(problems)
        self.ceiling = ceiling
