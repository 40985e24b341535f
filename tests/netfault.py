"""A TCP proxy on 127.0.0.1 whose link a test can cut and restore.

A unit connects to the proxy instead of the broker; `cut()` drops every
connection and refuses new ones (a tunnel, a dead zone), `restore()` lets
them through again. TLS passes through untouched. Threads and plain sockets:
small enough to read at once, and it stops by itself on close().
"""

from __future__ import annotations

import contextlib
import socket
import threading

BUFFER_BYTES = 65536


class LinkCutter:
    def __init__(self, target_host: str, target_port: int, cut: bool = False) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._up = threading.Event()
        if not cut:
            self._up.set()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._closing = False
        self.connections = 0  # accepted while the link was up
        threading.Thread(target=self._accept, name="link-cutter", daemon=True).start()

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closing = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()  # no link: the connection attempt fails at once
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(BUFFER_BYTES):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
