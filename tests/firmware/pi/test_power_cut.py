"""A power cut: `balise unit` killed with SIGKILL while its link is down, then started again.

The unit runs as a real process (`python -m balise unit`) with its GPS on a pseudo-terminal
fed a moving vehicle's NMEA at 10 Hz, and its broker behind a LinkCutter that is cut: every
position goes to the outbox, and to its journal when a connection attempt fails. The test
kills the process (no sign-off, no flush), reads what the journal held at that moment from a
copy of the state dir, starts the unit again on the same state dir, restores the link and
collects everything that reaches the command room.

What must hold: every record journaled before the cut arrives, with the very payload it had
(a seq always carries the same message), exactly once (one connection after the restore, and
nothing was in flight before the cut); and the restarted unit numbers its messages above
every seq the first one could have used (never reused, across a power cut).
Journal truncation at every byte is tested at the core level (tests/firmware/core/).
"""

from __future__ import annotations

import contextlib
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from firmware.core.outbox import DONE, JOURNAL, Outbox, parse_journal
from firmware.core.seqstore import SequenceStore
from firmware.core.storage import FileStorage
from tests.firmware.pi.unit_helpers import (
    UNIT,
    NmeaFeeder,
    Pty,
    Roundabout,
    UnitProcess,
    uplink,
    wait_until,
    write_unit_config,
)
from tests.mqtt_helpers import Broker, Deployment
from tests.netfault import LinkCutter

pytestmark = [pytest.mark.broker, pytest.mark.slow]

# Report on nearly every epoch, so the outbox fills fast.
CORE = {"min_interval_s": 0, "threshold_m": 1, "heartbeat_moving_s": 5}
JOURNALED_BEFORE_CUT = 30  # records in the journal when the power goes
JOURNAL_WRITES_BEFORE_CUT = 3  # times the journal grew: it is written while the unit runs
FILL_TIMEOUT_S = 40.0  # connection attempts back off: 1, 1-2, 1-4, 1-8 s...
DELIVERY_TIMEOUT_S = 30.0
FRESH_POSITIONS = 5  # positions of the restarted unit to see before stopping it


def unit_args(config: Path, receiver: Pty, state_dir: Path) -> list[str]:
    gps = f"serial://{receiver.path}?baud=9600"
    return ["--config", str(config), "--fake-gpio", "--gps", gps, "--state-dir", str(state_dir)]


def journaled_records(state_dir: Path) -> int:
    """Records appended to the journal so far (read only: the unit is still writing it)."""
    path = state_dir / JOURNAL
    frames, _skipped = parse_journal(path.read_bytes() if path.exists() else b"")
    return sum(1 for type_code, _body, _length in frames if type_code != DONE)


def held_in(state_dir: Path) -> dict[int, Any]:
    """seq -> message of every record the outbox in `state_dir` would send after a restart."""
    outbox = Outbox(UNIT, FileStorage(str(state_dir)))
    held: dict[int, Any] = {}
    for _token, message in outbox.next_publishes(10**6):
        for record in message.items if message.KIND == "batch" else [message]:
            held[record.seq] = record
    return held


def test_a_power_cut_loses_no_journaled_record_and_reuses_no_seq(
    deployment: Deployment, broker: Broker, tmp_path: Path
) -> None:
    proxy = LinkCutter(broker.host, broker.port, cut=True)
    config = write_unit_config(deployment, tmp_path / f"{UNIT}.toml", proxy.port, CORE)
    state = tmp_path / "state"
    at_cut = tmp_path / "state-at-cut"
    with (
        contextlib.closing(proxy),
        uplink(broker) as command_room,
        NmeaFeeder(Roundabout(), hz=10) as feeder,
    ):
        with (
            Pty() as receiver,
            feeder.feeding(receiver),
            UnitProcess(unit_args(config, receiver, state), tmp_path / "unit-1.log") as first,
        ):
            sizes: list[int] = []

            def journal_filled() -> bool:
                path = state / JOURNAL
                size = path.stat().st_size if path.exists() else 0
                if size and (not sizes or size != sizes[-1]):
                    sizes.append(size)
                return (
                    len(sizes) >= JOURNAL_WRITES_BEFORE_CUT
                    and journaled_records(state) >= JOURNALED_BEFORE_CUT
                )

            try:
                wait_until(journal_filled, FILL_TIMEOUT_S, "the journal to fill")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; journal sizes {sizes}:\n{first.log()}") from None
            first.power_cut()
        assert sizes == sorted(sizes), "the journal only grows while the link is down"
        assert command_room.messages() == [], "nothing can have crossed the cut link"

        shutil.copytree(state, at_cut)  # read a copy: recovery may rewrite the journal
        journaled = held_in(at_cut)
        ceiling = SequenceStore(FileStorage(str(at_cut))).ceiling
        assert len(journaled) >= JOURNALED_BEFORE_CUT
        assert max(journaled) < ceiling

        with (
            Pty() as receiver,
            feeder.feeding(receiver),
            UnitProcess(unit_args(config, receiver, state), tmp_path / "unit-2.log") as second,
        ):
            second.wait_for_log(f"unit {UNIT}:")
            proxy.restore()
            wait_until(
                lambda: set(journaled) <= {m.seq for m in command_room.sequenced()},
                DELIVERY_TIMEOUT_S,
                "every journaled record at the command room",
            )
            wait_until(
                lambda: (
                    len([p for p in command_room.positions() if p.seq >= ceiling])
                    >= FRESH_POSITIONS
                ),
                DELIVERY_TIMEOUT_S,
                "positions of the restarted unit",
            )
            assert second.stop() == 0, second.log()
        # The sign-off is the restarted unit's last publish: everything before it has arrived.
        wait_until(command_room.signed_off, what="the restarted unit's sign-off")

    arrived = command_room.sequenced()
    counts = Counter(message.seq for message in arrived)
    assert [seq for seq, count in counts.items() if count > 1] == [], "a seq arrived twice"
    by_seq = {message.seq: message for message in arrived}
    assert sorted(set(journaled) - set(by_seq)) == []
    changed = [(journaled[seq], by_seq[seq]) for seq in journaled if by_seq[seq] != journaled[seq]]
    assert changed == [], "a seq arrived with another payload than the one journaled"
    # Before the cut only the journal survives: what was in RAM is lost, nothing else comes back.
    assert {seq for seq in by_seq if seq < ceiling} == set(journaled)
    after = [message for message in arrived if message.seq not in journaled]
    assert after and min(message.seq for message in after) >= ceiling > max(journaled)
    assert {message.KIND for message in after} >= {"online", "pos"}
