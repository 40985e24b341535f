"""A scripted stand-in for gpsd's socket, for GpsdSource's error paths and its change detection.

It speaks just enough of gpsd's JSON protocol for gpsd-py3: the VERSION greeting, an answer
to ?WATCH (DEVICES and WATCH), and one scripted line per ?POLL; (the last one repeats).
The real gpsd, through gpsfake, is in test_gps_gpsd.py's marked tests.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

VERSION = {"class": "VERSION", "release": "3.22", "rev": "3.22", "proto_major": 3}
DEVICES = {"class": "DEVICES", "devices": []}
WATCH = {"class": "WATCH", "enable": True, "json": False}


def poll(*tpvs: dict[str, Any], sky: dict[str, Any] | None = None, active: int = 1) -> str:
    """A POLL answer line, as gpsd writes it."""
    skies = [{"class": "SKY", **sky}] if sky is not None else []
    tpv = [{"class": "TPV", **report} for report in tpvs]
    answer = {"class": "POLL", "time": "2024-11-22T10:00:00.000Z", "active": active}
    return json.dumps({**answer, "tpv": tpv, "gst": [], "sky": skies})


class FakeGpsd:
    """Listens on 127.0.0.1; each connection is served from the same script."""

    def __init__(self, greeting: str | None = json.dumps(VERSION)) -> None:
        self.greeting = greeting  # None: accept and say nothing
        self.answers: list[str] = []  # one per ?POLL; the last one repeats; "" hangs up
        self.polls = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="fake-gpsd", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.close()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return  # closed
            with connection, connection.makefile("rw", encoding="utf-8") as stream:
                self._talk(stream)

    def _talk(self, stream: Any) -> None:
        try:
            if self.greeting is None:
                stream.readline()  # silent until the client gives up
                return
            stream.write(self.greeting + "\n")
            stream.flush()
            for line in stream:
                if line.startswith("?WATCH"):
                    stream.write(json.dumps(DEVICES) + "\n" + json.dumps(WATCH) + "\n")
                elif line.startswith("?POLL"):
                    answer = self.answers[min(self.polls, len(self.answers) - 1)]
                    self.polls += 1
                    if not answer:
                        return
                    stream.write(answer + "\n")
                stream.flush()
        except OSError:
            return  # the client went away
