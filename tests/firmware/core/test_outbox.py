"""The outbox: priorities, batching, thinning, acknowledgements, the journal and recovery.

Portable: also runs under MicroPython. The helpers that build messages are
also used by the CPython-only test_outbox_files.py.
"""

import gc

from firmware.core.outbox import (
    DONE,
    JOURNAL,
    Outbox,
    frame,
    parse_journal,
    parse_ranges,
    ranges_text,
)
from firmware.core.storage import MemoryStorage, PowerCut
from protocol import codec
from protocol.messages import Batch, Health, Online, Position, Sos, StatusChange
from tests.protocol.portable import raises

MICROPYTHON = True

UNIT = "KEN-M01"
T0_MS = 1732260000000


def position(seq, full=False):
    values = {"unit": UNIT, "seq": seq, "t_ms": T0_MS + (seq % 100000) * 1000, "fix": 3}
    values["lat"] = 34.25 + (seq % 1000) / 10000
    values["lon"] = -6.5 - (seq % 1000) / 10000
    if full:  # every optional field, at its widest
        values.update(
            clock_time=True,
            lat=-89.123456,
            lon=-179.123456,
            speed_mps=149.9,
            heading_deg=359.9,
            alt_m=-999.0,
            acc_m=99999.0,
            hdop=99.9,
            sats=255,
            reason="fix_regained",
        )
    return Position(**values)


def status(seq, code=3):
    return StatusChange(unit=UNIT, seq=seq, t_ms=T0_MS + seq * 1000, status=code)


def sos(seq, alarm_id=None):
    alarm = seq if alarm_id is None else alarm_id
    return Sos(unit=UNIT, seq=seq, t_ms=T0_MS + seq * 1000, action="raise", alarm_id=alarm)


def health(seq):
    return Health(unit=UNIT, seq=seq, t_ms=T0_MS + seq * 1000, uptime_s=seq, outbox_depth=1)


def fill(outbox, messages, tick_ms=0):
    """Add many messages, collecting garbage now and then as a MicroPython main loop does.

    Without it the Unix port's heap fragments: each add leaves garbage between
    the records it keeps, and a big batch no longer finds a contiguous block.
    """
    for index, message in enumerate(messages):
        outbox.add(message, tick_ms)
        if index % 20 == 19:
            gc.collect()
    gc.collect()


def seqs_of(publishes):
    """The seqs of each publish: one list per publish."""
    result = []
    for _, message in publishes:
        items = message.items if message.KIND == "batch" else [message]
        result.append([item.seq for item in items])
    return result


def kinds_of(publishes):
    return [message.KIND for _, message in publishes]


def held(outbox):
    """Everything the outbox holds, as encoded payloads keyed by seq (publishes it all)."""
    outbox.link_down(0)
    payloads = {}
    for _, message in outbox.next_publishes(100000):
        for item in message.items if message.KIND == "batch" else [message]:
            payloads[item.seq] = codec.encode(item.replace(unit=UNIT))
    outbox.link_down(0)
    return payloads


def journal_writes(storage):
    return storage.written(JOURNAL)


# -- priorities and batching ----------------------------------------------------------


def test_priority_sos_then_status_then_newest_position_then_health_then_batches():
    outbox = Outbox(UNIT, MemoryStorage())
    for message in (
        position(1),
        health(2),
        status(3),
        position(4),
        sos(5),
        position(6),
        status(7),
        health(8),
        sos(9),
        position(10),
    ):
        outbox.add(message, 0)
    publishes = outbox.next_publishes(10)
    assert kinds_of(publishes) == ["sos", "sos", "status", "status", "pos", "health", "batch"]
    assert seqs_of(publishes) == [[5], [9], [3], [7], [10], [8], [1, 4, 6]]
    assert outbox.superseded == 1  # health 2: only the newest health is sent
    assert outbox.depth() == 9
    tokens = [token for token, _ in publishes]
    assert len(set(tokens)) == len(tokens)


def test_publishes_are_in_flight_until_acknowledged():
    outbox = Outbox(UNIT, MemoryStorage())
    for seq in (1, 2, 3):
        outbox.add(status(seq), 0)
    first = outbox.next_publishes(2)
    assert seqs_of(first) == [[1], [2]]
    assert seqs_of(outbox.next_publishes(2)) == [[3]]
    assert outbox.next_publishes(5) == []
    assert outbox.depth() == 3
    assert outbox.next_publishes(0) == []


def test_a_new_sos_jumps_ahead_of_waiting_positions():
    outbox = Outbox(UNIT, MemoryStorage())
    for seq in range(1, 6):
        outbox.add(position(seq), 0)
    outbox.add(sos(6), 0)
    assert seqs_of(outbox.next_publishes(1)) == [[6]]
    assert seqs_of(outbox.next_publishes(1)) == [[5]]


def test_batches_hold_at_most_max_batch_items_oldest_first():
    outbox = Outbox(UNIT, MemoryStorage())
    # (A few hundred records: the MicroPython Unix port's heap fragments beyond that.)
    fill(outbox, [position(seq) for seq in range(1, 262)])
    publishes = outbox.next_publishes(10)
    seqs = seqs_of(publishes)
    assert seqs[0] == [261]
    assert [len(s) for s in seqs[1:]] == [codec.MAX_BATCH_ITEMS, 60]
    assert seqs[1][0] == 1 and seqs[-1][-1] == 260
    for _, message in publishes[1:]:
        assert isinstance(message, Batch)
        assert len(codec.encode(message)) <= codec.MAX_BATCH_PAYLOAD_BYTES


def test_batches_stay_under_the_payload_limit_with_the_widest_positions():
    first = codec.MAX_SAFE_INT - 1000
    widest = [position(seq, full=True) for seq in range(first, first + 201)]
    # The codec's limit holds a full batch of the widest positions.
    outbox = Outbox(UNIT, MemoryStorage())
    fill(outbox, widest)
    whole = outbox.next_publishes(10)[1]
    assert len(whole[1].items) == codec.MAX_BATCH_ITEMS
    assert len(codec.encode(whole[1])) <= codec.MAX_BATCH_PAYLOAD_BYTES
    # A smaller limit cuts batches by bytes, packed tight.
    limit = 8192
    outbox = Outbox(UNIT, MemoryStorage(), max_batch_bytes=limit)
    fill(outbox, widest)
    publishes = outbox.next_publishes(10)[1:]
    counts = [len(message.items) for _, message in publishes]
    assert sum(counts) <= 200 and len(counts) >= 2
    assert counts[0] < codec.MAX_BATCH_ITEMS  # the byte limit cut the first batch
    gc.collect()
    size = len(codec.encode(publishes[0][1]))
    assert size <= limit
    # The next item would not have fitted (a pos payload is a batch item as it stands).
    item = len(codec.encode(publishes[1][1].items[0].replace(unit=UNIT)))
    assert size + item + 1 > limit


def test_max_count_also_limits_batches():
    outbox = Outbox(UNIT, MemoryStorage())
    fill(outbox, [position(seq) for seq in range(1, 261)])
    assert [len(s) for s in seqs_of(outbox.next_publishes(2))] == [1, codec.MAX_BATCH_ITEMS]
    assert seqs_of(outbox.next_publishes(1)) == [[259]]  # the newest pending one
    assert seqs_of(outbox.next_publishes(10)) == [[258], list(range(201, 258))]


def test_batches_can_be_kept_small_for_a_pico():
    outbox = Outbox(UNIT, MemoryStorage(), max_batch_bytes=1024)
    fill(outbox, [position(seq) for seq in range(1, 60)])
    publishes = outbox.next_publishes(100)[1:]
    assert len(publishes) > 3
    assert sum([len(message.items) for _, message in publishes]) == 58
    for _, message in publishes:
        assert len(codec.encode(message)) <= 1024
    raises(ValueError, Outbox, UNIT, MemoryStorage(), max_batch_bytes=40000)


def test_health_in_flight_is_kept_and_newer_health_replaces_pending_health():
    outbox = Outbox(UNIT, MemoryStorage())
    outbox.add(health(1), 0)
    assert seqs_of(outbox.next_publishes(5)) == [[1]]
    outbox.add(health(2), 0)
    outbox.add(health(3), 0)
    assert outbox.depth() == 2  # 1 in flight, 3 pending; 2 was superseded
    assert outbox.held_seqs() == {1, 3}
    assert seqs_of(outbox.next_publishes(5)) == [[3]]


# -- acknowledgements ---------------------------------------------------------------


def test_a_puback_removes_the_records_of_that_publish():
    outbox = Outbox(UNIT, MemoryStorage())
    for seq in range(1, 6):
        outbox.add(position(seq), 0)
    publishes = outbox.next_publishes(5)
    batch_token = publishes[1][0]
    assert outbox.on_puback(batch_token) is True
    assert outbox.depth() == 1
    assert outbox.on_puback(batch_token) is False  # already done
    assert outbox.on_puback(12345) is False
    assert outbox.on_puback(publishes[0][0]) is True
    assert outbox.depth() == 0


def test_link_down_makes_everything_in_flight_pending_again():
    outbox = Outbox(UNIT, MemoryStorage())
    outbox.add(status(1), 0)
    for seq in range(2, 5):
        outbox.add(position(seq), 0)
    before = outbox.next_publishes(10)
    assert outbox.next_publishes(10) == []
    outbox.link_down(100)
    after = outbox.next_publishes(10)
    assert seqs_of(after) == seqs_of(before)
    # A late PUBACK from the old session is ignored: its records are re-sent.
    assert outbox.on_puback(before[0][0]) is False
    assert outbox.depth() == 4
    for token, _ in after:
        outbox.on_puback(token)
    assert outbox.depth() == 0


def test_the_same_seq_can_be_added_again_after_its_puback():
    # The core re-sends an unacknowledged status with its seq after a while.
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage)
    outbox.add(status(7), 0)
    outbox.add(status(7), 0)  # already held: ignored
    assert outbox.depth() == 1
    token, _ = outbox.next_publishes(1)[0]
    outbox.on_puback(token)
    outbox.add(status(7), 5000)
    assert outbox.depth() == 1
    storage.cut_power()
    assert held(Outbox(UNIT, storage)) == {7: codec.encode(status(7))}


# -- SD-card policy --------------------------------------------------------------------


def test_status_and_sos_are_synced_before_add_returns():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage)
    outbox.add(status(1), 0)
    assert journal_writes(storage) == [("append", JOURNAL, len(storage.read(JOURNAL)), True)]
    outbox.add(sos(2), 0)
    assert [w[3] for w in journal_writes(storage)] == [True, True]
    storage.cut_power()
    assert sorted(held(Outbox(UNIT, storage))) == [1, 2]


def test_positions_are_not_written_while_the_link_is_up():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage, flush_after_ms=10000)
    tick = 0
    for seq in range(1, 200):
        outbox.add(position(seq), tick)
        outbox.add(health(100000 + seq), tick)
        for token, _ in outbox.next_publishes(5):
            outbox.on_puback(token)
        tick += 1000
        outbox.tick(tick)
    assert outbox.depth() == 0
    assert storage.writes == []


def test_positions_are_written_when_the_link_goes_down():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage)
    for seq in range(1, 4):
        outbox.add(position(seq), 0)
    outbox.next_publishes(1)  # one of them in flight
    assert storage.writes == []
    outbox.link_down(500)
    assert journal_writes(storage) == [("append", JOURNAL, len(storage.read(JOURNAL)), True)]
    outbox.link_down(600)  # nothing new to write
    assert len(storage.writes) == 1
    storage.cut_power()
    assert sorted(held(Outbox(UNIT, storage))) == [1, 2, 3]


def test_positions_not_acknowledged_within_flush_after_ms_are_written_together():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage, flush_after_ms=10000)
    outbox.add(position(1), 1000)
    outbox.next_publishes(5)  # in flight, but no PUBACK comes
    outbox.add(position(2), 4000)
    outbox.tick(10999)
    assert storage.writes == []
    outbox.tick(11000)
    assert [w[3] for w in journal_writes(storage)] == [True]
    outbox.tick(30000)
    assert len(storage.writes) == 1
    storage.cut_power()
    assert sorted(held(Outbox(UNIT, storage))) == [1, 2]


def test_acknowledging_records_in_memory_writes_nothing_but_journaled_ones_get_done_marks():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage)
    outbox.add(position(1), 0)
    outbox.add(status(2), 0)
    for token, _ in outbox.next_publishes(5):
        outbox.on_puback(token)
    writes = journal_writes(storage)
    assert [w[3] for w in writes] == [True, False]  # the status, then its done mark (not synced)
    frames, skipped = parse_journal(storage.read(JOURNAL))
    assert skipped == 0 and [f[0] for f in frames] == [ord("s"), DONE]


# -- capacity ---------------------------------------------------------------------------


def test_thinning_drops_old_positions_never_status_or_sos():
    outbox = Outbox(UNIT, MemoryStorage(), capacity=40)
    seq = 0
    for _ in range(10):
        for _ in range(6):
            seq += 1
            outbox.add(position(seq), 0)
        seq += 1
        outbox.add(status(seq), 0)
        seq += 1
        outbox.add(sos(seq), 0)
    assert outbox.depth() <= 40
    assert outbox.thinned == 80 - outbox.depth()
    publishes = outbox.next_publishes(100)
    kinds = kinds_of(publishes)
    assert kinds.count("sos") == 10 and kinds.count("status") == 10
    assert seqs_of(publishes)[20] == [seq - 2]  # the newest position survived


def test_thinning_keeps_recent_positions_dense_and_old_ones_sparse():
    outbox = Outbox(UNIT, MemoryStorage(), capacity=100)
    for seq in range(1, 301):
        outbox.add(position(seq), 0)
    assert outbox.depth() <= 100
    kept = sorted(held(outbox))
    assert kept[0] == 1  # the oldest is kept as an anchor
    assert kept[-20:] == list(range(281, 301))
    gaps = [kept[i + 1] - kept[i] for i in range(len(kept) - 1)]
    assert max(gaps[:10]) > max(gaps[-20:])


def test_an_outbox_full_of_status_and_sos_keeps_them_all():
    outbox = Outbox(UNIT, MemoryStorage(), capacity=3)
    outbox.add(position(1), 0)
    for seq in range(2, 8):
        outbox.add(status(seq) if seq % 2 else sos(seq), 0)
    assert outbox.depth() == 6
    assert sorted(held(outbox)) == [2, 3, 4, 5, 6, 7]


def test_a_journal_over_a_smaller_capacity_is_thinned_at_recovery():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage)
    outbox.add(status(1), 0)
    fill(outbox, [position(seq) for seq in range(2, 40)])
    outbox.link_down(0)
    smaller = Outbox(UNIT, storage, capacity=10)
    assert smaller.recovered_records == 39
    assert smaller.depth() <= 10 and smaller.thinned == 39 - smaller.depth()
    assert 1 in held(smaller)


def test_positions_in_flight_are_not_thinned():
    outbox = Outbox(UNIT, MemoryStorage(), capacity=2)
    outbox.add(position(1), 0)
    outbox.add(position(2), 0)
    outbox.next_publishes(5)
    outbox.add(position(3), 0)
    assert outbox.depth() == 2
    assert sorted(held(outbox)) == [1, 2]
    assert outbox.thinned == 1


def test_thinned_journal_records_get_done_marks():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage, capacity=10, compact_min_bytes=10**9)
    for seq in range(1, 11):
        outbox.add(position(seq), 0)
    outbox.link_down(0)  # all ten in the journal
    outbox.add(position(11), 0)  # over capacity: journaled positions are thinned
    assert outbox.thinned > 0
    frames, _ = parse_journal(storage.read(JOURNAL))
    assert frames[-1][0] == DONE
    assert storage.written(JOURNAL)[-1][3] is False
    outbox.link_down(0)
    kept = held(outbox)
    assert held(Outbox(UNIT, storage, capacity=10)) == kept


# -- recovery -------------------------------------------------------------------------------


def test_recovery_gives_back_exactly_the_undone_records():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage)
    messages = [position(1), status(2), sos(3), position(4), health(5), position(6), status(7)]
    for message in messages:
        outbox.add(message, 0)
    publishes = outbox.next_publishes(3)  # sos 3, status 2, status 7
    outbox.on_puback(publishes[0][0])
    outbox.on_puback(publishes[2][0])
    outbox.link_down(100)
    expected = held(outbox)
    assert sorted(expected) == [1, 2, 4, 5, 6]
    recovered = Outbox(UNIT, storage)
    assert recovered.recovered_records == 5 and recovered.recovered_dropped_bytes == 0
    assert held(recovered) == expected
    assert recovered.depth() == 5


def test_recovered_records_are_sent_and_acknowledged_like_new_ones():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage)
    outbox.add(status(1), 0)
    outbox.add(position(2), 0)
    outbox.link_down(0)
    recovered = Outbox(UNIT, storage)
    publishes = recovered.next_publishes(5)
    assert seqs_of(publishes) == [[1], [2]]
    for token, _ in publishes:
        recovered.on_puback(token)
    assert Outbox(UNIT, storage).depth() == 0


def test_a_power_cut_costs_only_positions_not_yet_written():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage, flush_after_ms=10000)
    outbox.add(position(1), 0)
    outbox.add(status(2), 1000)
    outbox.add(sos(3), 2000)
    outbox.add(position(4), 3000)
    outbox.tick(10000)  # positions 1 and 4 are written (1 is due)
    outbox.add(position(5), 11000)  # still only in RAM
    storage.cut_power()
    assert sorted(held(Outbox(UNIT, storage))) == [1, 2, 3, 4]


def test_a_torn_record_is_dropped_and_the_rest_recovered():
    for cut_at in (1, 2, 3):
        storage = MemoryStorage()
        outbox = Outbox(UNIT, storage)
        outbox.add(status(1), 0)
        outbox.add(sos(2), 0)
        storage.cut_power_during(cut_at)
        try:
            outbox.add(status(3), 0)
            outbox.add(status(4), 0)
            outbox.add(status(5), 0)
        except PowerCut:
            pass
        storage.cut_power(keep_unsynced_bytes=10000)  # the half-written frame stays
        recovered = Outbox(UNIT, storage)
        seqs = sorted(held(recovered))
        assert seqs == list(range(1, cut_at + 2)), (cut_at, seqs)
        assert recovered.recovered_dropped_bytes > 0
        # The damage is compacted away, and new records are read back after it.
        recovered.add(status(10), 0)
        seqs.append(10)
        assert sorted(held(Outbox(UNIT, storage))) == seqs
        assert Outbox(UNIT, storage).recovered_dropped_bytes == 0


def test_a_torn_tail_of_done_marks_costs_only_re_sends():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage)
    for seq in range(1, 6):
        outbox.add(status(seq), 0)
    for token, _ in outbox.next_publishes(5):
        outbox.on_puback(token)
    size_with_done_marks = len(storage.read(JOURNAL))
    storage.cut_power(keep_unsynced_bytes=30)  # part of the done marks survives
    recovered = Outbox(UNIT, storage)
    assert 0 < recovered.depth() <= 5
    assert len(storage.read(JOURNAL)) < size_with_done_marks


def test_a_damaged_frame_in_the_middle_costs_only_that_frame():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage)
    for seq in range(1, 4):
        outbox.add(status(seq), 0)
    journal = bytearray(storage.read(JOURNAL))
    frames, _ = parse_journal(bytes(journal))
    journal[frames[0][2] + 20] ^= 0x01  # a bit flips in the second frame's payload
    storage.files[JOURNAL] = bytes(journal)
    recovered = Outbox(UNIT, storage)
    assert sorted(held(recovered)) == [1, 3]
    assert recovered.recovered_dropped_bytes == frames[1][2]


def test_records_of_another_unit_or_undecodable_are_dropped():
    storage = MemoryStorage()
    good = frame(ord("s"), codec.encode(status(1)))
    # Written by a firmware before 1.1, whose payloads named their unit (`u`); since 1.1
    # the journal's unit is the outbox's, as the topic's is on the wire.
    other = frame(ord("s"), b'{"v":1,"u":"OTHER","q":2,"t":1732260002000,"st":3}')
    nonsense = frame(ord("p"), b'{"v":1}')
    storage.append(JOURNAL, good + other + nonsense + frame(DONE, b"x-y"), True)
    recovered = Outbox(UNIT, storage)
    assert sorted(held(recovered)) == [1]
    assert recovered.recovered_dropped_bytes == len(other) + len(nonsense) + 8 + 3


def test_compaction_keeps_the_content_and_shrinks_the_journal():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage, compact_min_bytes=2000)
    for seq in range(1, 11):
        outbox.add(position(seq), 0)
    outbox.link_down(0)  # positions 1-10 in the journal
    for seq in range(11, 200):
        outbox.add(status(seq), 0)
        token, _ = outbox.next_publishes(1)[0]
        outbox.on_puback(token)
    assert outbox.compactions > 0
    assert len(storage.read(JOURNAL)) < 4000
    assert storage.written(JOURNAL, "replace")
    expected = held(outbox)
    assert sorted(expected) == list(range(1, 11))
    assert held(Outbox(UNIT, storage)) == expected


def test_a_failing_card_does_not_lose_an_sos():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage, flush_after_ms=1000)
    storage.failing = True
    outbox.add(sos(1), 0)
    outbox.add(position(2), 0)
    assert outbox.storage_errors == 1 and isinstance(outbox.last_storage_error, OSError)
    assert seqs_of(outbox.next_publishes(5)) == [[1], [2]]
    outbox.tick(1000)  # the retry also fails
    assert outbox.storage_errors == 2
    outbox.tick(1500)  # waits flush_after_ms before trying again
    assert outbox.storage_errors == 2
    storage.failing = False
    outbox.tick(2000)
    assert outbox.storage_errors == 2
    storage.cut_power()
    assert sorted(held(Outbox(UNIT, storage))) == [1, 2]


def test_add_takes_only_the_outbox_kinds_of_its_own_unit():
    outbox = Outbox(UNIT, MemoryStorage())
    online = Online(unit=UNIT, seq=1, t_ms=T0_MS, online=True)
    raises(TypeError, outbox.add, online, 0)
    raises(TypeError, outbox.add, Batch(unit=UNIT, items=[position(2)]), 0)
    raises(ValueError, outbox.add, status(3).replace(unit="OTHER"), 0)
    raises(ValueError, outbox.add, position(4).replace(lat=None), 0)  # codec refuses it
    assert outbox.depth() == 0


# -- the journal format ---------------------------------------------------------------------


def test_frames_carry_length_and_crc():
    data = frame(ord("s"), b"hello")
    assert data[:4] == bytes((0xBA, ord("s"), 0, 5)) and data[4:9] == b"hello"
    assert len(data) == 13
    assert parse_journal(data) == ([(ord("s"), b"hello", 13)], 0)
    assert parse_journal(data[:-1]) == ([], 12)
    assert parse_journal(b"junk" + data + b"\xba\x70") == ([(ord("s"), b"hello", 13)], 6)


def test_done_ranges_round_trip():
    assert ranges_text([9, 3, 4, 5, 12, 13, 20]) == "3-5,9,12-13,20"
    assert parse_ranges(b"3-5,9,12-13,20") == [(3, 5), (9, 9), (12, 13), (20, 20)]
    for bad in (b"", b"5-3", b"-1", b"a", b"1,,2", b"\xff"):
        assert parse_ranges(bad) is None, bad


def test_a_done_mark_for_a_huge_range_is_cheap():
    storage = MemoryStorage()
    body = ("0-%d" % codec.MAX_SAFE_INT).encode()
    storage.append(JOURNAL, frame(ord("s"), codec.encode(status(5))) + frame(DONE, body), True)
    assert Outbox(UNIT, storage).depth() == 0


def test_many_done_records_fit_in_chunked_frames():
    storage = MemoryStorage()
    outbox = Outbox(UNIT, storage, compact_min_bytes=10**9)
    # Seqs far apart: no ranges to merge, so the done bodies are long.
    fill(outbox, [position(10**12 + seq * 2) for seq in range(1, 301)])
    outbox.link_down(0)
    for token, _ in outbox.next_publishes(100):
        outbox.on_puback(token)
    frames, skipped = parse_journal(storage.read(JOURNAL))
    assert skipped == 0
    # pos, then a batch of 200 (two frames: split at DONE_CHUNK_BYTES), then 99
    assert len([f for f in frames if f[0] == DONE]) == 4
    assert Outbox(UNIT, storage).depth() == 0
