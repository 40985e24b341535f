"""The whole chain: a real receiver's recording -> gpsd -> the unit -> mosquitto -> command room.

gpsd's gpsfake replays a recording of tests/data/nmea/; the Pi runtime runs in-process with the
real GpsdSource (opened from its gpsd:// URL, as `balise unit --gps` does), the real paho link
and a fake board, reporting often (threshold 1 m, no minimum interval, and a ping from the
command room every 0.2 s); a subscriber with the gateway's credentials decodes what arrives.

Every position reported with a fix must be one that gpsd itself reported for that recording
(its TPVs in the .chk, to the codec's 6 decimals), and no position with a fix may carry the time
of an epoch where gpsd had none. Reports without a fix carry no position, and a no-fix stretch
long enough to be seen is reported. And when gpsd goes away and comes back (restarted, or its
receiver replugged), the unit connects again and reports the new gpsd's fixes.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from firmware.drivers.gps import open_gps
from firmware.pi import runtime as runtime_module
from protocol import codec
from protocol.messages import FIX_NONE
from tests.firmware.drivers.gps_recordings import GPS_ROLLOVER_MS, Tpv, chk_tpvs, same_place
from tests.firmware.pi.unit_helpers import (
    Pinger,
    running_runtime,
    settled,
    uplink,
    wait_until,
)
from tests.gpsfake_helpers import GpsFake
from tests.mqtt_helpers import Broker

pytestmark = [pytest.mark.broker, pytest.mark.gpsd, pytest.mark.slow]

CORE = {"min_interval_s": 0, "threshold_m": 1, "heartbeat_moving_s": 5, "heartbeat_parked_s": 5}
# Recordings with fixes, and what each one brings to the chain.
RECORDINGS = {
    "bu353s4.log": "a steady 3D fix, barely moving: metre-level wander",
    "motorola-t805.log": "a start without a fix, a moving fix, a 2-epoch dropout",
    "ch-4711.log": "a fix, then lock lost for the last six epochs",
}
# Where the unit must see the loss: ch-4711's no-fix stretch lasts ~1.5 s of replay. (The
# motorola dropout lasts 0.2 s, as long as the runtime's idle wait between two gpsd polls.)
LOSES_FIX_AT_END = {"ch-4711.log"}
# The recordings barely move (a metre of wander at a standstill): besides the 1 m threshold,
# the command room asks for the position (ping) this often, which the unit answers at once.
PING_PERIOD_S = 0.2
MIN_PLACED_POSITIONS = 5
REPLAY_TIMEOUT_S = 20.0
GPS_RETRY_S = 0.5  # the runtime's wait before it tries a failed GPS source again

# Positions come off the wire, rounded to the codec's precision (5 decimals since 1.1).
ON_THE_WIRE = 0.5 * 10**-codec.LAT.decimals + 1e-9


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def no_fix_times(tpvs: list[Tpv]) -> set[int]:
    """Epoch times (modulo GPS week rollover) where gpsd reported no position at all."""
    placed = {tpv.time_ms % GPS_ROLLOVER_MS for tpv in tpvs if tpv.time_ms and tpv.lat}
    timed = {tpv.time_ms % GPS_ROLLOVER_MS for tpv in tpvs if tpv.time_ms}
    return timed - placed


@pytest.mark.parametrize("name", list(RECORDINGS))
def test_every_reported_position_is_one_gpsd_reported(
    broker: Broker, gpsfake: GpsFake, tmp_path: Path, name: str
) -> None:
    tpvs = chk_tpvs(name)
    unplaced = no_fix_times(tpvs)
    with uplink(broker) as command_room:
        replay, port = gpsfake.start(name)
        source = open_gps(f"gpsd://127.0.0.1:{port}")
        try:
            with running_runtime(broker, tmp_path / "state", source, **CORE) as runtime:
                with Pinger(command_room.session, PING_PERIOD_S):
                    try:
                        replay.wait(REPLAY_TIMEOUT_S)
                    except subprocess.TimeoutExpired:
                        pytest.fail(f"{name}: gpsfake still replaying after {REPLAY_TIMEOUT_S} s")
                wait_until(lambda: settled(runtime), what="the broker to have every report")
            wait_until(command_room.signed_off, what="the unit's sign-off")
        finally:
            source.close()

    positions = sorted(command_room.positions(), key=lambda position: position.seq)
    placed = [position for position in positions if position.lat is not None]
    assert len(placed) >= MIN_PLACED_POSITIONS, (name, positions)
    for position in placed:
        assert any(same_place(position.lat, position.lon, tpv, ON_THE_WIRE) for tpv in tpvs), (
            f"{name}: {position} is not a position gpsd reported"
        )
        if not position.clock_time:  # GPS time: the fix's own epoch
            assert position.t_ms % GPS_ROLLOVER_MS not in unplaced, (
                f"{name}: {position} placed at a time gpsd had no fix"
            )
    for position in positions:
        if position.fix == FIX_NONE:
            assert (position.lat, position.lon) == (None, None), position
            assert position.reason in ("fix_lost", "requested"), position
    if name in LOSES_FIX_AT_END:
        lost = [
            position
            for position in positions
            if position.fix == FIX_NONE
            and not position.clock_time
            and position.t_ms % GPS_ROLLOVER_MS in unplaced
        ]
        assert lost, f"{name}: the unit reported nothing of the no-fix stretch"
        after = positions[positions.index(lost[0]) :]
        assert [position for position in after if position.lat is not None] == []


def test_the_unit_gets_its_fixes_again_when_gpsd_comes_back(
    broker: Broker, gpsfake: GpsFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gpsd goes away (restarted, or its receiver replugged) and comes back on the same port."""
    monkeypatch.setattr(runtime_module, "GPS_RETRY_SECONDS", GPS_RETRY_S)
    first, second = "motorola-t805.log", "bu353s4.log"
    with uplink(broker) as command_room:
        replay, port = gpsfake.start(first)
        source = open_gps(f"gpsd://127.0.0.1:{port}")
        try:
            with running_runtime(broker, tmp_path / "state", source, **CORE) as runtime:
                with Pinger(command_room.session, PING_PERIOD_S):
                    replay.wait(REPLAY_TIMEOUT_S)  # gpsfake stops its gpsd at the end
                    # The unit's connection to that gpsd is dead: only a new one gets fixes.
                    wait_until(lambda: not listening(port), what="the first gpsd gone")
                    replay, _ = gpsfake.start(second, port)
                    replay.wait(REPLAY_TIMEOUT_S)
                wait_until(lambda: settled(runtime), what="the broker to have every report")
            wait_until(command_room.signed_off, what="the unit's sign-off")
        finally:
            source.close()
    placed = [position for position in command_room.positions() if position.lat is not None]
    second_tpvs = chk_tpvs(second)
    assert any(same_place(p.lat, p.lon, tpv, ON_THE_WIRE) for p in placed for tpv in second_tpvs), (
        "no position from the gpsd that came back"
    )
