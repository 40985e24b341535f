"""firmware/pi/systemd.py: READY, STOPPING and watchdog pings as sd_notify(3) datagrams.

A real AF_UNIX datagram socket stands in for systemd's; the environment is passed to the
Notifier as a dict, as systemd would set it for the service.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.pi.systemd import Notifier

RECEIVE_TIMEOUT_S = 2.0


class FakeSystemd:
    """The notify socket: collects every datagram sent to it."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)

    def received(self) -> list[str]:
        """Every datagram so far (they are delivered synchronously on a local socket)."""
        self.sock.setblocking(False)
        messages = []
        while True:
            try:
                messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return messages

    def next(self) -> str:
        self.sock.settimeout(RECEIVE_TIMEOUT_S)
        return self.sock.recv(4096).decode()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_path() -> Iterator[str]:
    # A socket path must fit in 108 bytes: pytest's tmp_path may not, a short temp dir does.
    with tempfile.TemporaryDirectory(prefix="sd-") as directory:
        yield str(Path(directory) / "notify")


@pytest.fixture
def systemd(notify_path: str) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(notify_path)
    yield fake
    fake.close()


def test_ready_and_stopping_reach_the_socket(systemd: FakeSystemd, notify_path: str) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_path})
    notifier.ready()
    assert systemd.next() == "READY=1"
    notifier.stopping()
    assert systemd.next() == "STOPPING=1"


def test_an_abstract_socket_is_written_with_an_at_sign() -> None:
    name = f"balise-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    abstract = FakeSystemd("\0" + name)
    try:
        Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert abstract.next() == "READY=1"
    finally:
        abstract.close()


def test_without_a_watchdog_setting_no_ping_is_sent(systemd: FakeSystemd, notify_path: str) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_path})
    for _ in range(10):
        notifier.watchdog()
    assert systemd.received() == []


def test_outside_systemd_every_call_does_nothing() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "1000000"})  # no NOTIFY_SOCKET
    notifier.ready()
    notifier.watchdog()
    notifier.stopping()
    assert notifier.address == ""


def test_watchdog_pings_at_twice_the_rate_systemd_requires(
    systemd: FakeSystemd, notify_path: str
) -> None:
    # WatchdogSec=0.4 s: a ping at most every 0.2 s, however often the event loop calls.
    notifier = Notifier({"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "400000"})
    assert notifier.interval_s == pytest.approx(0.2)
    started = time.monotonic()
    calls = 0
    while time.monotonic() - started < 0.7:
        notifier.watchdog()
        calls += 1
        time.sleep(0.002)
    elapsed = time.monotonic() - started
    pings = systemd.received()
    assert set(pings) == {"WATCHDOG=1"}
    assert calls > 20  # many calls, few pings
    # The first call pings at once; then one ping per whole interval gone by.
    assert 2 <= len(pings) <= 1 + int(elapsed / notifier.interval_s), (len(pings), elapsed)
