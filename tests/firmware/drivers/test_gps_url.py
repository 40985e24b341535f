"""GPS URLs: gpsd://HOST[:PORT] and serial:///dev/DEVICE[?baud=N]; bad ones name the problem."""

from __future__ import annotations

import socket

import pytest

from firmware.drivers.gps import gps_source_from_url, open_gps
from firmware.drivers.gps_gpsd import GpsdSource
from firmware.drivers.gps_serial import SerialNmeaSource
from firmware.errors import ConfigError, GpsError


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("gpsd://127.0.0.1:2947", "127.0.0.1", 2947),
        ("gpsd://localhost", "localhost", 2947),
        ("gpsd://gps.local:3000/", "gps.local", 3000),
        ("GPSD://10.0.0.7:2948", "10.0.0.7", 2948),
    ],
)
def test_gpsd_urls(url: str, host: str, port: int) -> None:
    source = gps_source_from_url(url)
    assert isinstance(source, GpsdSource)
    assert (source.host, source.port) == (host, port)


@pytest.mark.parametrize(
    ("url", "device", "baud"),
    [
        ("serial:///dev/ttyAMA0?baud=9600", "/dev/ttyAMA0", 9600),
        ("serial:///dev/serial0", "/dev/serial0", 9600),
        ("serial:///dev/ttyUSB0?baud=4800", "/dev/ttyUSB0", 4800),
        (
            "serial:///dev/serial/by-id/usb-u-blox_GNSS?baud=115200",
            "/dev/serial/by-id/usb-u-blox_GNSS",
            115200,
        ),
    ],
)
def test_serial_urls(url: str, device: str, baud: int) -> None:
    source = gps_source_from_url(url)
    assert isinstance(source, SerialNmeaSource)
    assert (source.port, source.baud) == (device, baud)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "unknown scheme ''"),
        ("/dev/ttyAMA0", "unknown scheme ''"),
        ("tcp://127.0.0.1:2947", "unknown scheme 'tcp'"),
        ("gpsd://", "no host"),
        ("gpsd://:2947", "no host"),
        ("gpsd://127.0.0.1:gps", "bad port"),
        ("gpsd://127.0.0.1:99999", "bad port"),
        ("gpsd://127.0.0.1:0", "port 0"),
        ("gpsd://[::1]:2947", "IPv6"),
        ("gpsd://user:secret@127.0.0.1", "no user or password"),
        ("gpsd://127.0.0.1:2947/devices", "a host and a port only"),
        ("gpsd://127.0.0.1?baud=9600", "a host and a port only"),
        ("serial://dev/ttyAMA0", "'dev' is read as a host"),
        ("serial:", "absolute path"),
        ("serial:///", "absolute path"),
        ("serial:///dev/ttyAMA0?baud=960", "baud '960' is not one of 4800, 9600"),
        ("serial:///dev/ttyAMA0?baud=fast", "baud 'fast'"),
        ("serial:///dev/ttyAMA0?baud=", "baud ''"),
        ("serial:///dev/ttyAMA0?baud=9600&baud=4800", "more than once"),
        ("serial:///dev/ttyAMA0?speed=9600", "unknown option speed"),
        ("serial:///dev/ttyAMA0?9600", "bad query"),
        ("serial:///dev/ttyAMA0#main", "absolute path"),
    ],
)
def test_bad_urls_name_the_url_and_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        gps_source_from_url(url)
    message = str(raised.value)
    assert f"GPS URL {url!r}" in message
    assert problem in message


def test_open_gps_reports_an_unreachable_gpsd_by_address() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nothing listens once closed
    with pytest.raises(GpsError, match=f"127.0.0.1:{port} is not reachable"):
        open_gps(f"gpsd://127.0.0.1:{port}")


def test_open_gps_reports_a_missing_serial_device() -> None:
    with pytest.raises(GpsError, match="/dev/no-such-gps"):
        open_gps("serial:///dev/no-such-gps?baud=4800")
