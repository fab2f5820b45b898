"""The worker app in this process, through its ASGI interface: no socket, no uvicorn, no
worker subprocess. For the answers that need no worker process of their own (refusals,
authentication, routes); what needs one (killing a task, a shutdown, connection limits,
chunked bodies through the HTTP server, TLS) keeps `helpers.workers.start_worker`.

The app runs on an event loop in a thread of its own, with its lifespan, so the worker's
service (its runner's warm simulation child included) starts and stops as in a real
worker. The tests get a plain `httpx.Client` whose transport hands each request to
`httpx.ASGITransport` on that loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from partisim.worker.app import create_app
from partisim.worker.settings import build_settings

__all__ = ["worker_app", "APP_URL"]

#: what the in-process app believes it listens on (nothing listens there)
APP_URL = "http://127.0.0.1:8080"
#: headers of the outer request that the inner one sets again from its body
_FRAMING = {"content-length", "transfer-encoding"}

T = TypeVar("T")


class _AppThread:
    """An event loop in a daemon thread, running one ASGI app."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="asgi-app", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class _SyncASGITransport(httpx.BaseTransport):
    """A synchronous transport that runs each request through `httpx.ASGITransport` on
    the app's loop (the body is read first: the app sees it with its length)."""

    def __init__(self, app: FastAPI, runner: _AppThread) -> None:
        self._inner = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._runner = runner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in _FRAMING]

        async def call() -> tuple[int, httpx.Headers, bytes]:
            inner = httpx.Request(request.method, request.url, headers=headers, content=body)
            response = await self._inner.handle_async_request(inner)
            return response.status_code, response.headers, await response.aread()

        status, answer_headers, content = self._runner.run(call())
        return httpx.Response(status, headers=answer_headers, content=content, request=request)


@contextmanager
def worker_app(options: Mapping[str, str] | None = None, *, token: str | None = None) -> Iterator[httpx.Client]:
    """A client of a worker app built from ``options`` (the `partisim worker` option names
    without dashes, values as on the command line) and ``token`` (PARTISIM_TOKEN)."""
    values = {"host": "127.0.0.1", "port": "8080", "runner": "process", "capacity": "1", **(options or {})}
    settings = build_settings(values, environ={"PARTISIM_TOKEN": token} if token else {})
    app = create_app(settings)
    runner = _AppThread()
    lifespan = app.router.lifespan_context(app)
    try:
        runner.run(lifespan.__aenter__())
        try:
            with httpx.Client(transport=_SyncASGITransport(app, runner), base_url=APP_URL) as client:
                yield client
        finally:
            runner.run(lifespan.__aexit__(None, None, None))
    finally:
        runner.close()
