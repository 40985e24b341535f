"""What a scenario's units made, checked against the gateway's store: none lost, none doubled.

Every record a unit's core puts in its outbox (pos, status, sos, health; each with
its seq) is written down as it is made, by `LedgerOutbox`, the fleet's outbox with
a hook on `add` (FleetOptions.outbox_factory). Presence (`online`, the last will)
is state outside the outbox and not counted here.

While a unit runs, the ledger refuses at once:
- a seq used for two different records (a seq reused, also across a reboot: a new
  seq made after a reboot must be above every seq made before it);
- one record made twice under two seqs (same kind and same time): it would be
  stored twice.

`Ledger.check(rows)` compares the store's rows (`read_store`) with the ledger:
every record made at least `grace_s` ago is stored, with its kind and time, and
nothing is stored for these units that they did not make. Allowed to be missing:
a health report when a newer one of that unit is stored (the outbox keeps only
the newest), and what was only in the unit's RAM at a power cut (docs/outbox.md:
positions and health waiting less than `flush_after_ms` with the link up).
Imports firmware.core.outbox and simulators.errors.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.core.outbox import Outbox
from simulators.errors import SimulatorError

GRACE_S = 5.0  # a record made this recently may still be on its way to the store
SHOWN = 5  # missing seqs named in a message


class LedgerError(SimulatorError):
    """A unit reused a seq or made one record twice."""


@dataclass(frozen=True)
class Made:
    kind: str
    t_ms: int
    at: float  # monotonic time it was made


@dataclass
class UnitLedger:
    made: dict[int, Made] = field(default_factory=dict)
    by_content: dict[tuple[str, int], int] = field(default_factory=dict)  # (kind, t) -> seq
    floor: int = -1  # every new seq must be above it (the highest seq before the last reboot)
    held_at_cut: set[int] = field(default_factory=set)
    ram_only: set[int] = field(default_factory=set)  # lost with the RAM at a power cut


class Ledger:
    def __init__(self) -> None:
        self.units: dict[str, UnitLedger] = {}
        self.problems: list[str] = []

    def outbox(self, unit_id: str, storage: Any) -> LedgerOutbox:
        """FleetOptions.outbox_factory: the unit's outbox, writing down what it is given."""
        return LedgerOutbox(self, unit_id, storage)

    def made(self, unit_id: str, message: Any) -> None:
        unit = self.units.setdefault(unit_id, UnitLedger())
        kind, seq, t_ms = message.KIND, message.seq, message.t_ms
        before = unit.made.get(seq)
        if before is not None:
            if (before.kind, before.t_ms) != (kind, t_ms):
                self.problems.append(
                    f"{unit_id} reused seq {seq}: a {before.kind} at t={before.t_ms}, "
                    f"then a {kind} at t={t_ms}"
                )
            return  # the same record again (a status re-sent): same seq, as it must be
        if seq <= unit.floor:
            self.problems.append(
                f"{unit_id} made seq {seq} after a reboot, not above {unit.floor} made before"
            )
        twin = unit.by_content.get((kind, t_ms))
        if twin is not None and kind != "health":
            self.problems.append(
                f"{unit_id} made one {kind} at t={t_ms} twice, as seq {twin} and seq {seq}"
            )
        unit.made[seq] = Made(kind, t_ms, time.monotonic())
        unit.by_content[(kind, t_ms)] = seq

    def power_cut(self, unit_id: str, outbox: LedgerOutbox) -> None:
        self.units.setdefault(unit_id, UnitLedger()).held_at_cut = outbox.held_seqs()

    def rebooted(self, unit_id: str, outbox: LedgerOutbox) -> int:
        """After a reboot: what the RAM took with it. Returns how many records that was."""
        unit = self.units.setdefault(unit_id, UnitLedger())
        lost = unit.held_at_cut - outbox.held_seqs()
        durable = sorted(s for s in lost if unit.made[s].kind in ("status", "sos"))
        if durable:
            self.problems.append(
                f"{unit_id} lost status/SOS seqs {durable} at its power cut: they are journaled "
                "(synced) before the outbox takes them"
            )
        unit.ram_only |= lost
        unit.held_at_cut = set()
        unit.floor = max(unit.made, default=unit.floor)
        return len(lost)

    def raise_problems(self) -> None:
        if self.problems:
            raise LedgerError("; ".join(self.problems[:SHOWN]))

    def sort(
        self, unit_id: str, stored: dict[int, tuple[str, int]], grace_s: float = GRACE_S
    ) -> dict[str, list[int]]:
        """The seqs of one unit by fate: stored, foreign, missing, and the missing allowed."""
        now = time.monotonic()
        unit = self.units[unit_id]
        newest_health = max((s for s, (kind, _) in stored.items() if kind == "health"), default=-1)
        fates: dict[str, list[int]] = {
            "stored": [],
            "missing": [],
            "recent": [],
            "replaced": [],
            "ram": [],
            "foreign": [],
        }
        for seq, made in unit.made.items():
            if seq in stored:
                fate = "stored"
            elif seq in unit.ram_only:
                fate = "ram"
            elif made.kind == "health" and seq < newest_health:
                fate = "replaced"
            elif now - made.at < grace_s:
                fate = "recent"
            else:
                fate = "missing"
            fates[fate].append(seq)
        fates["foreign"] = [
            seq
            for seq, (kind, t_ms) in stored.items()
            if seq not in unit.made or (unit.made[seq].kind, unit.made[seq].t_ms) != (kind, t_ms)
        ]
        for seqs in fates.values():
            seqs.sort()
        return fates

    def check(self, rows: dict[str, dict[int, tuple[str, int]]], grace_s: float = GRACE_S) -> str:
        """'' if the store holds every record made (see the module's docstring), else why not."""
        wrong: list[str] = []
        for unit_id in sorted(self.units):
            unit = self.units[unit_id]
            fates = self.sort(unit_id, rows.get(unit_id, {}), grace_s)
            missing = fates["missing"]
            if missing:
                kinds = sorted({unit.made[s].kind for s in missing})
                wrong.append(
                    f"{unit_id}: {len(missing)} records made but not stored "
                    f"({'/'.join(kinds)}; seqs {missing[:SHOWN]})"
                )
            if fates["foreign"]:
                wrong.append(
                    f"{unit_id}: {len(fates['foreign'])} stored records it did not make so "
                    f"(seqs {fates['foreign'][:SHOWN]})"
                )
        return "; ".join(wrong[:SHOWN])

    def summary(self, rows: dict[str, dict[int, tuple[str, int]]]) -> str:
        """How many records were made, stored, and why any others are not (yet) stored."""
        totals: dict[str, int] = {}
        made = 0
        for unit_id, unit in self.units.items():
            made += len(unit.made)
            for fate, seqs in self.sort(unit_id, rows.get(unit_id, {})).items():
                totals[fate] = totals.get(fate, 0) + len(seqs)
        stored_ram = sum(len(u.ram_only & set(rows.get(i, {}))) for i, u in self.units.items())
        text = f"{made} records made, {totals.get('stored', 0)} stored once each"
        notes = {
            "recent": f"made in the last {GRACE_S:g} s, on their way",
            "replaced": "health reports replaced by a newer one in the outbox",
            "ram": "only in RAM at a power cut (docs/outbox.md)",
            "missing": "LOST",
            "foreign": "stored but not made so",
        }
        text += "".join(f"; {totals[f]} {note}" for f, note in notes.items() if totals.get(f))
        if stored_ram:
            text += f" ({stored_ram} more in RAM at a power cut had reached the broker: stored)"
        return text


class LedgerOutbox(Outbox):
    """The firmware's outbox, telling the ledger about every record it is given."""

    def __init__(self, ledger: Ledger, unit: str, storage: Any) -> None:
        self.ledger = ledger
        super().__init__(unit, storage)

    def add(self, message: Any, tick_ms: int) -> None:
        self.ledger.made(self.unit, message)
        super().add(message, tick_ms)


def read_store(
    path: Path, unit_ids: set[str], since_ms: int
) -> dict[str, dict[int, tuple[str, int]]]:
    """unit -> seq -> (kind, t_ms) of the outbox kinds received since `since_ms`, read-only."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise SimulatorError(f"{path}: cannot open the gateway's store: {exc}") from exc
    try:
        cursor = db.execute(
            "SELECT unit, seq, kind, t_ms FROM messages WHERE received_ms >= ? "
            "AND kind IN ('pos', 'status', 'sos', 'health')",
            (since_ms,),
        )
        rows: dict[str, dict[int, tuple[str, int]]] = {}
        for unit, seq, kind, t_ms in cursor:
            if unit in unit_ids:
                rows.setdefault(unit, {})[seq] = (kind, t_ms)
        return rows
    except sqlite3.Error as exc:
        raise SimulatorError(f"{path}: cannot read the gateway's store: {exc}") from exc
    finally:
        db.close()
