"""Connections that send part of a request (or nothing) and then stay silent, read until
serve cuts them: ``--request-timeout`` in tests/queue/test_serve_limits.py and in
bench/serve_hardening.py."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterable

__all__ = ["STALLS", "StalledSockets"]

STALLS = {
    "nada": b"",
    "media cabecera": b"GET /api/summary HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Lento: ",
    "medio cuerpo": b"POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 300\r\n\r\n[{",
}


class StalledSockets:
    """One connection to 127.0.0.1:``port`` per payload, each sent its payload and left open.

    ``poll`` reads what serve sends: answers gather in ``received`` (by file number), a
    connection serve closed leaves ``open`` and sets ``last_cut`` (seconds since opening).
    The sockets stay open until ``close``, so their file numbers stay unique.
    """

    def __init__(self, port: int, payloads: Iterable[bytes]) -> None:
        self.opened = time.monotonic()
        self.socks: list[socket.socket] = []
        self.received: dict[int, bytes] = {}
        self.open: set[int] = set()
        self.last_cut = 0.0
        self._sel = selectors.DefaultSelector()
        for data in payloads:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if data:
                sock.sendall(data)
            sock.setblocking(False)
            self._sel.register(sock, selectors.EVENT_READ)
            self.socks.append(sock)
            self.open.add(sock.fileno())

    def poll(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for serve, then read every connection it woke."""
        for key, _ in self._sel.select(timeout=timeout):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if chunk:
                self.received[key.fd] = self.received.get(key.fd, b"") + chunk
            else:
                self.open.discard(key.fd)
                self._sel.unregister(sock)
                self.last_cut = time.monotonic() - self.opened

    def answer(self, sock: socket.socket) -> bytes:
        return self.received.get(sock.fileno(), b"")

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self._sel.close()
