"""ASGI middleware of the worker: request log, bearer token, body size limit.

Plain ASGI (no BaseHTTPMiddleware) so /ping stays cheap.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["RequestLog", "BearerAuth", "BodyLimit", "json_error", "json_bytes", "printable"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("partisim.worker.requests")


def json_bytes(data: Any) -> bytes:
    """Strict JSON (no NaN/Infinity) as UTF-8; a lone surrogate a client sent becomes '?'."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8", errors="replace")


def printable(text: str) -> str:
    """`text` safe for one log line: control characters escaped."""
    return text if text.isprintable() else text.encode("unicode_escape", errors="replace").decode("ascii")


async def json_error(
    send: Send, code: int, status: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
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


class RequestLog:
    """One line per request: method, path, status, duration and the task id if any."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            task_id = scope.get("state", {}).get("task_id")
            ms = (time.perf_counter() - start) * 1000
            log.info(
                "%s %s %s %.1f ms%s",
                scope["method"],
                printable(scope["path"]),
                status or "-",
                ms,
                f" tarea={printable(task_id)}" if task_id else "",
            )


class BearerAuth:
    """When a token is set, every path but the open ones needs `Authorization: Bearer <token>`.

    Every request's ``state["authorized"]`` tells the routes whether the caller showed the
    token (always true without one): the open paths answer an anonymous caller less."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        open_paths: frozenset[str],
        on_refused: Callable[[int], None] | None = None,
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.open_paths = open_paths
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if self.token is None:
            state["authorized"] = True
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, rest = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    given = rest.strip()
                break
        # compare_digest: the time taken does not tell how much of the token matched
        state["authorized"] = bool(given) and hmac.compare_digest(given, self.token)
        if state["authorized"] or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        if self.on_refused:
            self.on_refused(401)
        message = (
            "falta la cabecera Authorization: Bearer <token>"
            if not given
            else "token incorrecto en Authorization: Bearer"
        )
        await json_error(send, 401, "unauthorized", message, [(b"www-authenticate", b"Bearer")])


class BodyLimit:
    """Read request bodies up to `max_bytes` and refuse larger ones with 422 before any parsing."""

    def __init__(self, app: ASGIApp, max_bytes: int, on_refused: Callable[[int], None] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_refused = on_refused

    async def _refuse(self, send: Send) -> None:
        if self.on_refused:
            self.on_refused(422)
        await json_error(
            send,
            422,
            "invalid",
            f"el cuerpo de la petición supera el límite de este worker (max_body_bytes = {self.max_bytes} bytes)",
            [(b"connection", b"close")],
        )

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
