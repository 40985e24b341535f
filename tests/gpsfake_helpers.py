"""gpsd's own gpsfake for tests: replays NMEA once through its own gpsd on a free port.

`GpsFake.start(recording)` takes the name of a recording of tests/data/nmea/ or the path of
any NMEA log (the simulators write their own); every replay runs in its own process group,
gpsd included, and `stop_all()` ends them. The `gpsfake` fixture (tests/conftest.py) stops
every replay a test started when it ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.firmware.drivers.gps_recordings import recording

GPSFAKE = shutil.which("gpsfake") or "/usr/bin/gpsfake"
# gpsfake writes one sentence every cycle; 0.05 s replays a 90-line recording in about 5 s.
GPSFAKE_CYCLE_SECONDS = 0.05
GPSFAKE_LISTEN_SECONDS = 10.0
STOP_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process and everything in its process group, whatever state they are in."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):  # the group is gone
            os.killpg(process.pid, sig)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        break
    with contextlib.suppress(ProcessLookupError):  # a gpsd that outlived gpsfake
        os.killpg(process.pid, signal.SIGKILL)


class GpsFake:
    """Starts replays; `stop_all()` ends them (the fixture calls it)."""

    def __init__(self, log_dir: Path, cycle_s: float = GPSFAKE_CYCLE_SECONDS) -> None:
        self.log_dir = log_dir
        self.cycle_s = cycle_s
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str | Path, port: int | None = None
    ) -> tuple[subprocess.Popen[bytes], int]:
        """(gpsfake's process, its gpsd's port: `port`, or a free one) once that gpsd listens."""
        if not Path(GPSFAKE).exists():
            pytest.fail("gpsfake is missing: scripts/system-deps.sh installs gpsd-clients")
        port = port or free_port()
        # -1 once; -q quiet; -W 1: exit (and stop gpsd) 1 s after the last sentence.
        command = [GPSFAKE, "-1", "-q", "-W", "1", "-P", str(port), "-c", str(self.cycle_s)]
        path = name if isinstance(name, Path) else recording(name)
        log_path = self.log_dir / f"gpsfake-{path.stem}-{port}.txt"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*command, str(path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, gpsd included
            )
        self.processes.append(process)
        deadline = time.monotonic() + GPSFAKE_LISTEN_SECONDS
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return process, port
            except OSError:
                if process.poll() is not None:
                    break
                time.sleep(0.02)
        stop_group(process)
        pytest.fail(f"gpsfake's gpsd did not listen on {port}: see {log_path}")

    def stop_all(self) -> None:
        for process in self.processes:
            stop_group(process)
