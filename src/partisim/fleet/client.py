"""Clients for a worker's HTTP API, with methods named after its endpoints.

`WorkerClient` (sync) and `AsyncWorkerClient` share the request building, the one
mapping from HTTP outcomes to partisim exceptions (`_decode`) and the decoding of
answers into the typed models of `partisim.protocol`.

Workers that are not partisim (the users' original ETAPA-4 worker, say) are spoken to
with the same calls: ``status()`` decodes their status leniently (``is_partisim`` is
then False) and ``execute_foreign()`` keeps what their /execute reported as a
`ForeignResult` ("no verificable") instead of refusing an answer without engine or
checksum. Every https URL is verified, against ``ca_file`` when given.
"""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import Mapping
from typing import TypeVar

import httpx
from httpx import USE_CLIENT_DEFAULT
from pydantic import BaseModel, JsonValue, ValidationError

from partisim.errors import AuthError, TaskRejected, TaskTimedOut, WorkerFailed, WorkerUnavailable, explain_os_error
from partisim.protocol import (
    SOFTWARE,
    ExecuteRequest,
    ExecuteResult,
    ForeignResult,
    HealthReport,
    History,
    PingReply,
    TaskState,
    WorkerStatus,
)

__all__ = [
    "WorkerClient",
    "AsyncWorkerClient",
    "EXECUTE_MARGIN_S",
    "tls_context",
    "ssl_failure_reason",
    "transport_reason",
]

#: seconds added to a task's own timeout for the HTTP read, so the worker's 504
#: (the computation was killed) arrives before our client gives up.
EXECUTE_MARGIN_S = 10.0


@functools.lru_cache(maxsize=8)
def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying TLS context: the system's CAs, or only ``ca_file`` when given (a
    self-signed certificate, or the fleet's own CA). One per file for every client:
    building one loads the CA bundle (tens of ms of CPU), which the health loop would
    otherwise pay on each ping."""
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise WorkerFailed(f"no se puede usar la autoridad certificadora {ca_file}: {exc}") from None


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


M = TypeVar("M", bound=BaseModel)
#: a JSON object as a worker sent it, before a protocol model validates it
Body = dict[str, JsonValue]
#: the query string of a request
Query = Mapping[str, str | int | float | bool | None]


def _model(kind: type[M], body: Body, base_url: str) -> M:
    """A 2xx body as its protocol model; a body that does not fit is a worker fault."""
    try:
        return kind.model_validate(body)
    except ValidationError as exc:
        bad = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:3])
        raise WorkerFailed(f"{base_url}: respuesta inesperada (campos {bad or '?'})") from None


def _read_timeout(base: float, task_timeout: float | None) -> float | None:
    # A task without its own timeout may run as long as the worker allows.
    return None if task_timeout is None else task_timeout + EXECUTE_MARGIN_S + base


def _decode(response: httpx.Response, base_url: str) -> Body:
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


def _decode_health(response: httpx.Response, base_url: str) -> Body:
    """/health's 503 "unhealthy" is an answer, not an outage: return it as data."""
    if response.status_code == 503:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "status" in body:
            return body
    return _decode(response, base_url)


def transport_reason(exc: BaseException) -> str:
    """Why a request never got an answer, in Spanish (never an exception's class name)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return "nombre de máquina desconocido"
        if isinstance(cause, ssl.SSLError):
            return "fallo de TLS (revise el certificado y la dirección https://)"
        if isinstance(cause, OSError) and cause.errno:
            return explain_os_error(cause)
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.TimeoutException):
        return "tiempo de espera agotado"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "cerró la conexión sin responder"
    if isinstance(exc, (httpx.ReadError, httpx.WriteError)):
        return "se cortó la conexión"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "protocolo no soportado (use http:// o https://)"
    return "error de red"


def _status(body: Body, base_url: str) -> WorkerStatus:
    """A partisim worker's status strictly; any other worker's leniently."""
    if body.get("software") == SOFTWARE:
        return _model(WorkerStatus, body, base_url)
    return WorkerStatus.lenient(body)


def _foreign(body: Body, request: ExecuteRequest, base_url: str) -> ForeignResult:
    status = body.get("status")
    if status not in (None, "success", "completed", "ok"):
        message = body.get("error") or body.get("message") or f"estado {status!r}"
        raise WorkerFailed(f"{base_url}: {message}")
    return ForeignResult.from_answer(body, task_id=request.task_id or "", engine=request.benchmark, worker_id=base_url)


def ssl_failure_reason(exc: BaseException) -> str | None:
    """Why TLS failed, if an `ssl.SSLError` is somewhere in the chain of ``exc``."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return str(seen.reason or seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _transport_error(exc: httpx.HTTPError, base_url: str) -> Exception:
    reason = ssl_failure_reason(exc)
    if reason is not None:
        return WorkerUnavailable(f"{base_url}: fallo de TLS ({reason}); revise el certificado y --ca-file")
    if isinstance(exc, httpx.ReadTimeout):
        return TaskTimedOut(f"{base_url}: sin respuesta dentro del tiempo límite")
    if isinstance(exc, httpx.TimeoutException):
        return WorkerUnavailable(f"{base_url}: no responde (tiempo de conexión agotado)")
    return WorkerUnavailable(f"{base_url}: no se puede conectar: {transport_reason(exc)}")


class _Base:
    def __init__(
        self, base_url: str, *, timeout: float = 5.0, token: str | None = None, ca_file: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token = token
        self.ca_file = ca_file


class WorkerClient(_Base):
    """Blocking client: `WorkerClient("http://127.0.0.93:8080").ping()`."""

    def __init__(
        self, base_url: str, *, timeout: float = 5.0, token: str | None = None, ca_file: str | None = None
    ) -> None:
        super().__init__(base_url, timeout=timeout, token=token, ca_file=ca_file)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers=_headers(token),
            trust_env=False,
            verify=tls_context(ca_file),
        )

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: JsonValue = None,
        params: Query | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> Body:
        try:
            response = self._http.request(
                method, path, json=json, params=params, timeout=USE_CLIENT_DEFAULT if timeout is None else timeout
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.base_url) from None
        return _decode(response, self.base_url)

    def ping(self) -> PingReply:
        return _model(PingReply, self._request("GET", "/ping"), self.base_url)

    def health(self) -> HealthReport:
        try:
            response = self._http.get("/health")
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.base_url) from None
        return _model(HealthReport, _decode_health(response, self.base_url), self.base_url)

    def status(self) -> WorkerStatus:
        return _status(self._request("GET", "/status"), self.base_url)

    def _execute(self, request: ExecuteRequest) -> Body:
        read = _read_timeout(self.timeout, request.timeout)
        return self._request("POST", "/execute", json=request.body(), timeout=httpx.Timeout(self.timeout, read=read))

    def execute(self, request: ExecuteRequest) -> ExecuteResult:
        return _model(ExecuteResult, self._execute(request), self.base_url)

    def execute_foreign(self, request: ExecuteRequest) -> ForeignResult:
        """``execute`` on a worker that is not partisim: its answer as reported."""
        return _foreign(self._execute(request), request, self.base_url)

    def submit(self, request: ExecuteRequest) -> TaskState:
        return _model(TaskState, self._request("POST", "/tasks", json=request.body()), self.base_url)

    def get_task(self, task_id: str) -> TaskState:
        return _model(TaskState, self._request("GET", f"/tasks/{task_id}"), self.base_url)

    def cancel_task(self, task_id: str) -> TaskState:
        return _model(TaskState, self._request("DELETE", f"/tasks/{task_id}"), self.base_url)

    def history(self, limit: int | None = None, status: str | None = None) -> History:
        query = {k: v for k, v in {"limit": limit, "status": status}.items() if v is not None}
        return _model(History, self._request("GET", "/history", params=query), self.base_url)


class AsyncWorkerClient(_Base):
    """The same API for asyncio code: `await client.execute(...)`."""

    def __init__(
        self, base_url: str, *, timeout: float = 5.0, token: str | None = None, ca_file: str | None = None
    ) -> None:
        super().__init__(base_url, timeout=timeout, token=token, ca_file=ca_file)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            headers=_headers(token),
            verify=tls_context(ca_file),
            trust_env=False,
        )

    async def __aenter__(self) -> AsyncWorkerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: JsonValue = None,
        params: Query | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> Body:
        try:
            response = await self._http.request(
                method, path, json=json, params=params, timeout=USE_CLIENT_DEFAULT if timeout is None else timeout
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.base_url) from None
        return _decode(response, self.base_url)

    async def ping(self) -> PingReply:
        return _model(PingReply, await self._request("GET", "/ping"), self.base_url)

    async def health(self) -> HealthReport:
        try:
            response = await self._http.get("/health")
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.base_url) from None
        return _model(HealthReport, _decode_health(response, self.base_url), self.base_url)

    async def status(self) -> WorkerStatus:
        return _status(await self._request("GET", "/status"), self.base_url)

    async def _execute(self, request: ExecuteRequest) -> Body:
        read = _read_timeout(self.timeout, request.timeout)
        return await self._request(
            "POST", "/execute", json=request.body(), timeout=httpx.Timeout(self.timeout, read=read)
        )

    async def execute(self, request: ExecuteRequest) -> ExecuteResult:
        return _model(ExecuteResult, await self._execute(request), self.base_url)

    async def execute_foreign(self, request: ExecuteRequest) -> ForeignResult:
        """``execute`` on a worker that is not partisim: its answer as reported."""
        return _foreign(await self._execute(request), request, self.base_url)

    async def submit(self, request: ExecuteRequest) -> TaskState:
        return _model(TaskState, await self._request("POST", "/tasks", json=request.body()), self.base_url)

    async def get_task(self, task_id: str) -> TaskState:
        return _model(TaskState, await self._request("GET", f"/tasks/{task_id}"), self.base_url)

    async def cancel_task(self, task_id: str) -> TaskState:
        return _model(TaskState, await self._request("DELETE", f"/tasks/{task_id}"), self.base_url)

    async def history(self, limit: int | None = None, status: str | None = None) -> History:
        query = {k: v for k, v in {"limit": limit, "status": status}.items() if v is not None}
        return _model(History, await self._request("GET", "/history", params=query), self.base_url)
