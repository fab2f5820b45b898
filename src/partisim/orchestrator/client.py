"""Clients for a worker's HTTP API, with methods named after its endpoints.

`WorkerClient` (sync) and `AsyncWorkerClient` share the request building and
the one mapping from HTTP outcomes to partisim exceptions (`_decode`).
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx

from partisim.errors import AuthError, TaskRejected, TaskTimedOut, WorkerFailed, WorkerUnavailable

__all__ = ["WorkerClient", "AsyncWorkerClient", "EXECUTE_MARGIN_S"]

#: seconds added to a task's own timeout for the HTTP read, so the worker's 504
#: (the computation was killed) arrives before our client gives up.
EXECUTE_MARGIN_S = 10.0


@functools.lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    # One verifying context for every client: building one loads the CA bundle (tens of
    # ms of CPU), which the health loop would otherwise pay on each ping.
    return ssl.create_default_context()


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _execute_body(benchmark: str, params: dict[str, Any], task_id: str | None,
                  timeout: float | None) -> dict[str, Any]:
    body: dict[str, Any] = {"benchmark": benchmark, "params": dict(params)}
    if task_id is not None:
        body["task_id"] = task_id
    if timeout is not None:
        body["timeout"] = timeout
    return body


def _read_timeout(base: float, task_timeout: float | None) -> float | None:
    # A task without its own timeout may run as long as the worker allows.
    return None if task_timeout is None else task_timeout + EXECUTE_MARGIN_S + base


def _decode(response: httpx.Response, base_url: str) -> dict[str, Any]:
    """The JSON body of a 2xx answer; otherwise the matching exception."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"raw": response.text[:200]}
    code = response.status_code
    if 200 <= code < 300:
        return body
    message = str(body.get("error") or body.get("detail") or body.get("raw") or f"HTTP {code}")
    where = f"{base_url}: {message}"
    if code == 401:
        raise AuthError(where, code)
    if code == 504:
        raise TaskTimedOut(where, code)
    if 400 <= code < 500:
        raise TaskRejected(where, code)
    raise WorkerFailed(where, code)


def _decode_health(response: httpx.Response, base_url: str) -> dict[str, Any]:
    """/health's 503 "unhealthy" is an answer, not an outage: return it as data."""
    if response.status_code == 503:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "status" in body:
            return body
    return _decode(response, base_url)


def _transport_error(exc: httpx.HTTPError, base_url: str) -> Exception:
    if isinstance(exc, httpx.ReadTimeout):
        return TaskTimedOut(f"{base_url}: sin respuesta dentro del tiempo límite")
    if isinstance(exc, httpx.TimeoutException):
        return WorkerUnavailable(f"{base_url}: no responde (tiempo de conexión agotado)")
    return WorkerUnavailable(f"{base_url}: no se puede conectar ({type(exc).__name__})")


class _Base:
    def __init__(self, base_url: str, *, timeout: float = 5.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token = token


class WorkerClient(_Base):
    """Blocking client: `WorkerClient("http://127.0.0.93:8080").ping()`."""

    def __init__(self, base_url: str, *, timeout: float = 5.0, token: str | None = None) -> None:
        super().__init__(base_url, timeout=timeout, token=token)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=_headers(token), trust_env=False,
                                  verify=_tls())

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.base_url) from None
        return _decode(response, self.base_url)

    def ping(self) -> dict[str, Any]:
        return self._request("GET", "/ping")

    def health(self) -> dict[str, Any]:
        try:
            response = self._http.get("/health")
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.base_url) from None
        return _decode_health(response, self.base_url)

    def status(self) -> dict[str, Any]:
        return self._request("GET", "/status")

    def execute(self, benchmark: str, params: dict[str, Any], *, task_id: str | None = None,
                timeout: float | None = None) -> dict[str, Any]:
        return self._request("POST", "/execute", json=_execute_body(benchmark, params, task_id, timeout),
                             timeout=httpx.Timeout(self.timeout, read=_read_timeout(self.timeout, timeout)))

    def submit(self, benchmark: str, params: dict[str, Any], *, task_id: str | None = None,
               timeout: float | None = None) -> dict[str, Any]:
        return self._request("POST", "/tasks", json=_execute_body(benchmark, params, task_id, timeout))

    def get_task(self, task_id: str) -> dict[str, Any]:
        return self._request("GET", f"/tasks/{task_id}")

    def cancel_task(self, task_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/tasks/{task_id}")

    def history(self, limit: int | None = None, status: str | None = None) -> dict[str, Any]:
        query = {k: v for k, v in {"limit": limit, "status": status}.items() if v is not None}
        return self._request("GET", "/history", params=query)


class AsyncWorkerClient(_Base):
    """The same API for asyncio code: `await client.execute(...)`."""

    def __init__(self, base_url: str, *, timeout: float = 5.0, token: str | None = None) -> None:
        super().__init__(base_url, timeout=timeout, token=token)
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, headers=_headers(token), verify=_tls(),
                                       trust_env=False)

    async def __aenter__(self) -> AsyncWorkerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.base_url) from None
        return _decode(response, self.base_url)

    async def ping(self) -> dict[str, Any]:
        return await self._request("GET", "/ping")

    async def health(self) -> dict[str, Any]:
        try:
            response = await self._http.get("/health")
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.base_url) from None
        return _decode_health(response, self.base_url)

    async def status(self) -> dict[str, Any]:
        return await self._request("GET", "/status")

    async def execute(self, benchmark: str, params: dict[str, Any], *, task_id: str | None = None,
                      timeout: float | None = None) -> dict[str, Any]:
        return await self._request("POST", "/execute", json=_execute_body(benchmark, params, task_id, timeout),
                                   timeout=httpx.Timeout(self.timeout, read=_read_timeout(self.timeout, timeout)))

    async def submit(self, benchmark: str, params: dict[str, Any], *, task_id: str | None = None,
                     timeout: float | None = None) -> dict[str, Any]:
        return await self._request("POST", "/tasks", json=_execute_body(benchmark, params, task_id, timeout))

    async def get_task(self, task_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/tasks/{task_id}")

    async def cancel_task(self, task_id: str) -> dict[str, Any]:
        return await self._request("DELETE", f"/tasks/{task_id}")

    async def history(self, limit: int | None = None, status: str | None = None) -> dict[str, Any]:
        query = {k: v for k, v in {"limit": limit, "status": status}.items() if v is not None}
        return await self._request("GET", "/history", params=query)
