"""The scenario ledger: a reused seq, a seq not above a reboot's floor and one record made
twice are refused; `check` names what the store lacks or holds that was never made; health
replaced by a newer one and what was only in RAM at a power cut may be missing. Against a
real SQLite store written by the gateway's own store class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firmware.core.storage import FileStorage, MemoryStorage
from gateway.store import Record
from gateway.store.sqlite import SqliteStore
from protocol import codec
from protocol.messages import Health, Position, StatusChange
from simulators.ledger import Ledger, read_store

UNIT = "KEN-M01"
T0_MS = 1732260000000


def position(seq: int, t_s: int) -> Position:
    return Position(unit=UNIT, seq=seq, t_ms=T0_MS + t_s * 1000, fix=3, lat=34.26, lon=-6.58)


def status(seq: int, t_s: int) -> StatusChange:
    return StatusChange(unit=UNIT, seq=seq, t_ms=T0_MS + t_s * 1000, status=3)


def health(seq: int, t_s: int) -> Health:
    return Health(unit=UNIT, seq=seq, t_ms=T0_MS + t_s * 1000, cpu_temp_c=48.0)


def test_the_same_record_again_is_fine_but_a_reused_seq_is_named() -> None:
    ledger = Ledger()
    ledger.made(UNIT, status(10, 1))
    ledger.made(UNIT, status(10, 1))  # a status re-sent: same seq, same record
    assert ledger.problems == []
    ledger.made(UNIT, position(10, 2))
    assert ledger.problems == [
        f"{UNIT} reused seq 10: a status at t={T0_MS + 1000}, then a pos at t={T0_MS + 2000}"
    ]


def test_one_record_made_twice_under_two_seqs_is_named() -> None:
    ledger = Ledger()
    ledger.made(UNIT, position(10, 1))
    ledger.made(UNIT, position(11, 1))
    assert ledger.problems == [
        f"{UNIT} made one pos at t={T0_MS + 1000} twice, as seq 10 and seq 11"
    ]


def test_after_a_reboot_new_seqs_must_be_above_every_seq_before(tmp_path: Path) -> None:
    ledger = Ledger()
    outbox = ledger.outbox(UNIT, FileStorage(str(tmp_path / UNIT)))
    outbox.add(status(20, 1), 0)  # journaled (synced) at once
    outbox.add(position(21, 2), 0)  # in RAM with the link up
    ledger.power_cut(UNIT, outbox)
    rebooted = ledger.outbox(UNIT, FileStorage(str(tmp_path / UNIT)))
    assert rebooted.held_seqs() == {20}
    assert ledger.rebooted(UNIT, rebooted) == 1  # the position went with the RAM
    rebooted.add(position(22, 3), 0)
    assert ledger.problems == []
    rebooted.add(position(5, 4), 0)
    assert ledger.problems == [f"{UNIT} made seq 5 after a reboot, not above 21 made before"]


def test_a_status_lost_at_a_power_cut_is_named() -> None:
    ledger = Ledger()
    outbox = ledger.outbox(UNIT, MemoryStorage())
    outbox.add(status(30, 1), 0)
    ledger.power_cut(UNIT, outbox)
    ledger.rebooted(UNIT, ledger.outbox(UNIT, MemoryStorage()))  # a card that kept nothing
    assert ledger.problems[0].startswith(f"{UNIT} lost status/SOS seqs [30] at its power cut")


def store_with(path: Path, messages: list[Any]) -> None:
    with SqliteStore(path) as store:
        store.write(
            [Record(m.unit, m.seq, m.KIND, m.t_ms, T0_MS, codec.encode(m), m) for m in messages]
        )


def test_check_names_what_is_missing_and_what_was_never_made(tmp_path: Path) -> None:
    ledger = Ledger()
    made = [position(1, 1), status(2, 2), health(3, 3), health(4, 4), position(5, 5)]
    for message in made:
        ledger.made(UNIT, message)
    db = tmp_path / "store.sqlite"
    store_with(db, [made[0], made[3], made[4]])  # the status is lost; health 3 was replaced
    rows = read_store(db, {UNIT}, 0)
    assert ledger.check(rows, grace_s=0) == (
        f"{UNIT}: 1 records made but not stored (status; seqs [2])"
    )
    assert "1 health reports replaced by a newer one" in ledger.summary(rows)
    assert ledger.check(rows, grace_s=60) == ""  # all made just now: may be on their way

    store_with(db, [made[1], position(9, 9)])
    rows = read_store(db, {UNIT}, 0)
    assert ledger.check(rows, grace_s=0) == (
        f"{UNIT}: 1 stored records it did not make so (seqs [9])"
    )
    assert read_store(db, {"KEN-C01"}, 0) == {}
