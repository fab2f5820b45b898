"""Client for the REST API of ``partisim serve``, used by the CLI commands and the menu.

``ServerClient(base_url)`` has one method per route. When ``serve`` is not running
it raises `ServerUnavailable`, whose Spanish message says so and how to start it;
any 4xx/5xx answer becomes `ServerError` carrying the server's own message.
"""

from __future__ import annotations

from typing import Any

import httpx

from partisim.errors import PartisimError
from partisim.orchestrator.config import DEFAULT_SERVER, default_server

__all__ = ["ServerClient", "ServerUnavailable", "ServerError", "DEFAULT_SERVER", "default_server"]


class ServerUnavailable(PartisimError):
    """Nothing answers at the server address."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"el servidor no está en marcha en {url}; inícielo con `partisim serve`"
        )
        self.url = url


class ServerError(PartisimError):
    """The server answered with an error (its message is already Spanish)."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServerClient:
    """``ServerClient("http://127.0.0.1:8000").summary()``."""

    def __init__(self, base_url: str | None = None, *, timeout: float = 30.0) -> None:
        self.base_url = (base_url or default_server()).rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, *, read_timeout: float | None = None, **kw: Any) -> Any:
        if read_timeout is not None:
            kw["timeout"] = httpx.Timeout(self._http.timeout.connect or 30.0, read=read_timeout)
        try:
            response = self._http.request(method, path, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError):
            raise ServerUnavailable(self.base_url) from None
        except httpx.InvalidURL:
            raise PartisimError(f"dirección de servidor inválida: {self.base_url}") from None
        except httpx.HTTPError as exc:
            raise PartisimError(f"error al hablar con el servidor {self.base_url}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            message = body.get("error") if isinstance(body, dict) else None
            raise ServerError(message or f"el servidor respondió HTTP {response.status_code}",
                              response.status_code)
        if body is None:
            raise PartisimError(f"{self.base_url} no parece un servidor partisim (respuesta no JSON)")
        return body

    # -- routes -------------------------------------------------------------------

    def submit(self, tasks: Any, *, batch: str | None = None) -> dict[str, Any]:
        """Queue a list of task objects (or one); returns ``{"batch", "ids", "count"}``."""
        body: dict[str, Any] = {"tasks": tasks if isinstance(tasks, list) else [tasks]}
        if batch is not None:
            body["batch"] = batch
        return self._request("POST", "/api/tasks", json=body)

    def tasks(self, *, status: str | None = None, batch: str | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
        query = {k: v for k, v in {"status": status, "batch": batch, "limit": limit}.items() if v is not None}
        return self._request("GET", "/api/tasks", params=query)["tasks"]

    def task(self, task_id: str, *, wait: float | None = None) -> dict[str, Any]:
        query = {"wait": wait} if wait else {}
        return self._request("GET", f"/api/tasks/{task_id}", params=query,
                             read_timeout=(wait or 0) + 30.0)

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/api/tasks/{task_id}")

    def workers(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/workers")["workers"]

    def summary(self, *, batch: str | None = None, wait: float | None = None) -> dict[str, Any]:
        query: dict[str, Any] = {"batch": batch} if batch else {}
        if wait:
            query["wait"] = wait
        return self._request("GET", "/api/summary", params=query, read_timeout=(wait or 0) + 30.0)

    def batches(self, limit: int | None = None) -> list[dict[str, Any]]:
        query = {"limit": limit} if limit else {}
        return self._request("GET", "/api/batches", params=query)["batches"]

    def verify(self, count: int, *, batch: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"count": count}
        if batch:
            body["batch"] = batch
        return self._request("POST", "/api/verify", json=body)
