"""ASGI middleware of the worker: request log, bearer token (with a limit on failed
attempts per client address), body size limit (`listen.guards`).

Plain ASGI (no BaseHTTPMiddleware) so /ping stays cheap.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable

from partisim.listen.guards import (
    ASGIApp,
    BodyLimit,
    FailedAuthLimiter,
    Message,
    Receive,
    Scope,
    Send,
    client_address,
    json_bytes,
    json_error,
)

__all__ = ["RequestLog", "BearerAuth", "BodyLimit", "worker_body_limit", "json_error", "json_bytes", "printable"]

log = logging.getLogger("partisim.worker.requests")


def printable(text: str) -> str:
    """`text` safe for one log line: control characters escaped."""
    return text if text.isprintable() else text.encode("unicode_escape", errors="replace").decode("ascii")


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
        limiter: FailedAuthLimiter | None = None,
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.open_paths = open_paths
        self.on_refused = on_refused
        self.limiter = limiter or FailedAuthLimiter()

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
        address = client_address(scope)
        wait = self.limiter.retry_after(address) if given else 0.0
        # compare_digest: the time taken does not tell how much of the token matched; an
        # address out of attempts is not even compared (guessing runs at the refill rate)
        state["authorized"] = bool(given) and wait == 0 and hmac.compare_digest(given, self.token)
        if given and not state["authorized"] and wait == 0:
            self.limiter.failed(address)
        if state["authorized"] or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        if wait > 0:
            if self.on_refused:
                self.on_refused(429)
            await self.limiter.refuse(send, wait)
            return
        if self.on_refused:
            self.on_refused(401)
        message = (
            "falta la cabecera Authorization: Bearer <token>"
            if not given
            else "token incorrecto en Authorization: Bearer"
        )
        await json_error(send, 401, "unauthorized", message, [(b"www-authenticate", b"Bearer")])


def worker_body_limit(app: ASGIApp, max_bytes: int, on_refused: Callable[[int], None] | None = None) -> BodyLimit:
    """The worker's body limit: 422 (its contract), naming its ``max_body_bytes``."""
    return BodyLimit(
        app,
        max_bytes,
        on_refused,
        status=422,
        message=f"el cuerpo de la petición supera el límite de este worker (max_body_bytes = {max_bytes} bytes)",
    )
