"""HTTP connections of the worker and of serve: a deadline to receive each request, and a cap on connections.

uvicorn bounds only the idle time *between* requests (keep-alive). A client that
connects and sends nothing, half a header or half a body holds its connection, a file
descriptor and a slot of `limit_concurrency` for as long as it likes. An ASGI wrapper
around `receive` could bound the body, but not the headers: the app is only called
once they are complete. So the bound lives one level down, in a small subclass of
uvicorn's httptools protocol:

- a timer starts when a connection opens and when the first byte of each further
  request arrives, and stops when the request's body is complete;
- when it fires, the client gets ``408`` with a JSON error (unless a response has
  already started) and the connection is closed; an app still waiting for the body
  sees a disconnect and writes nothing;
- above uvicorn's ``limit_concurrency`` open connections (or running requests) the
  answer is our JSON ``503`` instead of uvicorn's plain-text one;
- a request the HTTP parser cannot read gets a JSON ``400`` (uvicorn's is plain text),
  and one whose request line and headers exceed `MAX_HEADER_BYTES` a JSON ``431``
  (httptools itself sets no limit: a header could grow until memory runs out).

A TLS handshake is bounded by asyncio (60 s), before this protocol sees the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from partisim.listen.guards import ASGIApp, Receive, Scope, Send

__all__ = ["GuardedHttpProtocol", "guarded_protocol", "timeout_response", "MAX_HEADER_BYTES"]

log = logging.getLogger("partisim.listen")

_WARN_EVERY_S = 10.0
#: request line plus headers, in bytes
MAX_HEADER_BYTES = 64 * 1024
#: after refusing an unreadable request, the rest the client still sends is read and
#: dropped for this long: closing at once with unread data would send a reset, and the
#: client could lose our answer with it
LINGER_S = 2.0


def _raw_json(status_line: bytes, data: dict[str, str]) -> bytes:
    body = json.dumps(data, ensure_ascii=False, allow_nan=False).encode()
    head = (
        b"HTTP/1.1 " + status_line + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
    )
    return head + body


def timeout_response(seconds: float) -> bytes:
    """The raw ``408`` written on the socket when a request did not arrive in time."""
    return _raw_json(
        b"408 Request Timeout",
        {
            "status": "timeout",
            "error": f"la petición no llegó completa en {seconds:g} s (cabeceras y cuerpo); se cierra la conexión",
        },
    )


_MALFORMED = _raw_json(
    b"400 Bad Request",
    {
        "status": "invalid",
        "error": "petición HTTP mal formada (línea de petición, ruta, cabeceras o codificación del cuerpo); "
        "se cierra la conexión",
    },
)


_HEADERS_TOO_LARGE = _raw_json(
    b"431 Request Header Fields Too Large",
    {
        "status": "invalid",
        "error": f"la línea de petición y las cabeceras superan {MAX_HEADER_BYTES} bytes; se cierra la conexión",
    },
)


class _HeadersTooLarge(Exception):
    """Raised inside a parser callback: httptools turns it into a parser error."""


def _too_many(limit: int, who: str) -> ASGIApp:
    """An ASGI app answering 503 (JSON) to a request over the connection limit."""
    body = json.dumps(
        {
            "status": "unavailable",
            "error": f"demasiadas conexiones simultáneas con {who} (máximo {limit}); reintente en unos segundos",
        },
        ensure_ascii=False,
        allow_nan=False,
    ).encode()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"1"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a per-request receive deadline and a JSON 503."""

    #: seconds to receive one request's headers and body (set by `guarded_protocol`)
    request_timeout: float = 10.0
    #: who answers, in the 503 ("este worker", "partisim serve")
    who: str = "este servidor"
    _last_warning: float = 0.0  # shared by all connections: one log line per burst

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # uvicorn's own check would answer text/plain: take it over (same rule, JSON answer)
        self.max_connections = self.limit_concurrency
        self.limit_concurrency = None
        self._deadline: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._header_bytes = 0
        self._headers_too_large = False
        self._discarding = False

    # -- the deadline --

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _take_over(self) -> bool:
        """Stop the app's answer to the request being received; True if ours may be written.

        Headers late or unreadable: ours, unless an earlier (pipelined) response is still
        going out. Body late or unreadable: the app waiting for it sees a disconnect and
        writes nothing; ours is written unless its response already started."""
        cycle = self.cycle
        if self._in_headers or cycle is None:
            return cycle is None or cycle.response_complete
        answered = cycle.response_started
        cycle.disconnected = True
        cycle.message_event.set()
        return not answered

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._take_over():
            self.transport.write(timeout_response(self.request_timeout))
        self.transport.close()
        now = time.monotonic()
        if now - GuardedHttpProtocol._last_warning >= _WARN_EVERY_S:
            GuardedHttpProtocol._last_warning = now
            peer = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
            log.warning(
                "conexión de %s cerrada: la petición no llegó completa en %g s (se avisa como mucho una vez cada %g s)",
                peer,
                self.request_timeout,
                _WARN_EVERY_S,
            )

    # -- uvicorn's callbacks --

    def send_400_response(self, msg: str) -> None:
        """The HTTP parser refused the request: a JSON 400 (431 for huge headers), then close."""
        self._disarm()
        self._discarding = True
        if not self._take_over():
            self.transport.close()
            return
        self.transport.write(_HEADERS_TOO_LARGE if self._headers_too_large else _MALFORMED)
        if self.transport.can_write_eof():  # answer, end our side, drop what still comes, then close
            self.transport.write_eof()
            self._deadline = self.loop.call_later(min(LINGER_S, self.request_timeout), self.transport.close)
        else:  # TLS: no half-close
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if not self._discarding:
            super().data_received(data)

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            self._headers_too_large = True
            raise _HeadersTooLarge

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_headers = True
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0
        self._arm()  # a keep-alive connection's next request: its own deadline

    def on_headers_complete(self) -> None:
        self._in_headers = False
        limit = self.max_connections
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            app = self.app
            self.app = _too_many(limit, self.who)  # read once, synchronously, when the request starts
            try:
                super().on_headers_complete()
            finally:
                self.app = app
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def guarded_protocol(request_timeout: float, who: str = "este servidor") -> type[GuardedHttpProtocol]:
    """The protocol class to give uvicorn (``Config(http=...)``) for this deadline; ``who``
    names the service in the 503 answer."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"request_timeout": request_timeout, "who": who})
