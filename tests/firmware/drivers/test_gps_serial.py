"""SerialNmeaSource over a pseudo-terminal: real recordings in, the same fixes as gpsd out.

The test writes a recording into the master side of a pty; the driver reads the slave side
with pyserial, as it reads /dev/serial0 on a Pi.
"""

from __future__ import annotations

import os
import threading
import time
import tty
from collections.abc import Iterator

import pytest

from firmware.core.fix import MODE_3D, Fix
from firmware.drivers.gps import open_gps
from firmware.drivers.gps_nmea import NmeaAssembler
from firmware.drivers.gps_serial import SerialNmeaSource
from firmware.errors import GpsError
from tests.firmware.drivers.gps_recordings import RECORDINGS, check_against_gpsd, nmea_lines

# Long enough that a slow test machine never splits an epoch; the driver's default is 0.2 s.
QUIET_S = 0.5
GGA = "$GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000*7D\r\n"
RMC = "$GPRMC,030719.000,A,3747.0873,S,17518.8938,E,0.69,181.39,311214,,,A*7D\r\n"
NEXT_GGA = "$GPGGA,030720.000,3747.0875,S,17518.8938,E,1,08,1.1,59.8,M,23.7,M,,0000*70\r\n"


class Pty:
    """A pseudo-terminal: the test writes the master, the driver opens `path`."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo or CR/LF rewriting before pyserial sets it up
        self.path = os.ttyname(self._slave)
        self._writers: list[threading.Thread] = []

    def write(self, text: str | bytes) -> None:
        data = text.encode("ascii") if isinstance(text, str) else text
        while data:
            written = os.write(self.master, data)
            data = data[written:]

    def write_in_background(self, text: str | bytes) -> threading.Thread:
        """Write from a thread: a pty buffers a few kB, then blocks until the reader reads."""
        writer = threading.Thread(target=self.write, args=(text,), name="pty-writer")
        writer.start()
        self._writers.append(writer)
        return writer

    def close(self) -> None:
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                continue  # closed by the test already
        for writer in self._writers:
            writer.join(5)


@pytest.fixture
def pty() -> Iterator[Pty]:
    terminal = Pty()
    yield terminal
    terminal.close()


@pytest.fixture
def source(pty: Pty) -> Iterator[SerialNmeaSource]:
    gps = SerialNmeaSource(pty.path, 9600, quiet_s=QUIET_S)
    gps.open()
    yield gps
    gps.close()


def read_all(source: SerialNmeaSource, writer: threading.Thread) -> list[Fix]:
    """Fixes until the writer is done and the line has gone quiet."""
    fixes: list[Fix] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        fix = source.read()
        if fix is not None:
            fixes.append(fix)
        elif not writer.is_alive():
            return fixes
    pytest.fail("the recording did not finish")


def assembled(lines: list[str]) -> list[Fix]:
    assembler = NmeaAssembler()
    fixes = [assembler.feed(line) for line in lines] + [assembler.flush()]
    return [fix for fix in fixes if fix is not None]


@pytest.mark.parametrize("name", RECORDINGS)
def test_recordings_through_a_pty_give_gpsds_fixes(
    pty: Pty, source: SerialNmeaSource, name: str
) -> None:
    lines = nmea_lines(name)
    writer = pty.write_in_background("".join(line + "\r\n" for line in lines))
    fixes = read_all(source, writer)
    assert fixes == assembled(lines)
    check_against_gpsd(name, fixes)


def test_counters_come_through(pty: Pty, source: SerialNmeaSource) -> None:
    lines = nmea_lines("mtk-3301.log")
    read_all(source, pty.write_in_background("".join(line + "\r\n" for line in lines)))
    assert (source.counts.ok, source.counts.bad_checksum) == (36, 3)


def test_a_serial_url_opens_the_port_at_its_baud_rate(pty: Pty) -> None:
    gps = open_gps(f"serial://{pty.path}?baud=4800")
    try:
        assert isinstance(gps, SerialNmeaSource) and gps.baud == 4800
        pty.write(GGA + RMC)
        fix = gps.read()  # the line goes quiet after the burst: the epoch is complete
        assert fix is not None and fix.mode == MODE_3D and fix.has_position()
        assert gps.read() is None
    finally:
        gps.close()


def test_a_sentence_split_across_reads_is_joined(pty: Pty) -> None:
    gps = SerialNmeaSource(pty.path, quiet_s=0.1)
    gps.open()
    try:
        pty.write(GGA + RMC[:30])
        assert gps.read() is None  # quiet, but mid-sentence: the epoch may go on
        pty.write(RMC[30:] + NEXT_GGA)
        fix = gps.read()
        assert fix is not None and fix.speed_mps is not None  # the RMC made it whole
        assert gps.counts.unparsable == 0
    finally:
        gps.close()


def test_noise_without_line_ends_is_dropped_and_counted(pty: Pty, source: SerialNmeaSource) -> None:
    # A receiver at another baud rate than the port's looks like this.
    noise = bytes(range(128, 256)) * 20
    writer = pty.write_in_background(noise + b"\n" + RMC.encode("ascii"))
    fixes = read_all(source, writer)
    assert len(fixes) == 1
    assert source.counts.unparsable >= 1


def test_a_missing_port_raises_gps_error_naming_it() -> None:
    with pytest.raises(GpsError, match="/dev/no-such-gps"):
        SerialNmeaSource("/dev/no-such-gps").open()


def test_read_before_open_raises() -> None:
    with pytest.raises(GpsError, match="not open"):
        SerialNmeaSource("/dev/ttyAMA0").read()


def test_a_port_that_goes_away_raises_gps_error(pty: Pty, source: SerialNmeaSource) -> None:
    os.close(pty.master)  # the receiver is unplugged: reads on the slave fail
    with pytest.raises(GpsError, match=pty.path):
        source.read()
