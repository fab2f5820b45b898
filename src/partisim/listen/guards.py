"""What stands at the door of the worker and of serve, before any route runs: the body
size limit, JSON that cannot nest without bound, and a limit on failed authentications
per client address.

Plain ASGI pieces (no BaseHTTPMiddleware), so cheap paths stay cheap.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: the door stays free of pydantic
    from pydantic import JsonValue

__all__ = [
    "BodyLimit",
    "FailedAuthLimiter",
    "JsonRefused",
    "MAX_JSON_DEPTH",
    "AUTH_BURST",
    "client_address",
    "json_bytes",
    "json_error",
    "loads_json",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: deepest nesting of arrays and objects a request body may have (a task list is 4 deep)
MAX_JSON_DEPTH = 32
#: wrong tokens a client address may try at once; then one more per AUTH_WINDOW_S / AUTH_BURST s
AUTH_BURST = 50
AUTH_WINDOW_S = 60.0


def json_bytes(data: object) -> bytes:
    """Strict JSON (no NaN/Infinity) as UTF-8; a lone surrogate a client sent becomes '?'."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8", errors="replace")


async def json_error(
    send: Send, code: int, status: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer ``{"status": status, "error": message}`` with HTTP ``code``."""
    body = json_bytes({"status": status, "error": message})
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- JSON ------------------------------------------------------------------------------


class JsonRefused(ValueError):
    """A body that is not JSON, or JSON nested deeper than allowed; the message is Spanish."""


def _depth_exceeds(value: object, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def loads_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> JsonValue:
    """Parse a request body; `JsonRefused` when it is not UTF-8 JSON or nests deeper than ``max_depth``."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRefused("el cuerpo de la petición no es texto UTF-8") from None
    else:
        text = raw
    too_deep = JsonRefused(f"el JSON está anidado a más de {max_depth} niveles (listas u objetos)")
    try:
        value: JsonValue = json.loads(text)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:
        raise JsonRefused(f"el cuerpo no es JSON válido: {exc}") from None
    # fewer brackets than the limit cannot nest deeper than it: skip the walk
    if text.count("[") + text.count("{") > max_depth and _depth_exceeds(value, max_depth):
        raise too_deep
    return value


# -- body size -------------------------------------------------------------------------


class BodyLimit:
    """Read request bodies up to ``max_bytes`` and refuse larger ones (``status``, 413 by
    default) before any parsing, from the declared length when there is one."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        on_refused: Callable[[int], None] | None = None,
        *,
        status: int = 413,
        message: str | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_refused = on_refused
        self.status = status
        self.message = message or f"el cuerpo de la petición supera el límite de {max_bytes} bytes"

    async def _refuse(self, send: Send) -> None:
        if self.on_refused:
            self.on_refused(self.status)
        kind = "too_large" if self.status == 413 else "invalid"
        await json_error(send, self.status, kind, self.message, [(b"connection", b"close")])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for a disconnect

        await self.app(scope, replay, send)


# -- failed authentications -------------------------------------------------------------


def client_address(scope: Scope) -> str:
    """The client's address (without its port), or "?" when the server does not know it."""
    client = scope.get("client")
    return str(client[0]) if client else "?"


class FailedAuthLimiter:
    """How many wrong tokens a client address may try: a bucket of ``burst`` attempts per
    address, refilled at ``burst`` per ``window_s`` seconds. An address whose bucket is
    empty is refused (429) without its token even being compared, so guessing runs at
    the refill rate at most. At most ``max_clients`` addresses are remembered (the
    longest unseen are forgotten first)."""

    def __init__(
        self,
        burst: int = AUTH_BURST,
        window_s: float = AUTH_WINDOW_S,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = float(burst)
        self.rate = burst / window_s
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, address: str, now: float) -> float:
        found = self._buckets.get(address)
        if found is None:
            return self.burst
        level, at = found
        return min(self.burst, level + (now - at) * self.rate)

    def retry_after(self, address: str) -> float:
        """Seconds before ``address`` may try again (0: it may now)."""
        level = self._level(address, self.clock())
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def failed(self, address: str) -> None:
        """``address`` showed a wrong token."""
        now = self.clock()
        level = max(0.0, self._level(address, now) - 1.0)
        self._buckets[address] = (level, now)
        self._buckets.move_to_end(address)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def message(self, seconds: float) -> str:
        return (
            "demasiados intentos de autenticación fallidos desde esta dirección; "
            f"espere {math.ceil(seconds)} s antes de volver a intentarlo"
        )

    async def refuse(self, send: Send, seconds: float) -> None:
        """The 429 answer, with Retry-After."""
        await json_error(
            send,
            429,
            "too_many_attempts",
            self.message(seconds),
            [(b"retry-after", str(math.ceil(seconds)).encode())],
        )
