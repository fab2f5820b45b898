"""Client for the REST API of ``partisim serve``, used by the CLI commands and the menu.

``ServerClient(base_url)`` has one method per route and answers typed models. When
``serve`` is not running it raises `ServerUnavailable`, whose Spanish message says so
and how to start it; any 4xx/5xx answer becomes `ServerError` carrying the server's
own message. It presents serve's token (``token``, else ``PARTISIM_TOKEN_FILE`` /
``PARTISIM_TOKEN``) and verifies an https serve against ``ca_file`` (else
``PARTISIM_CA_FILE``, else the system's CAs).

This module is the orchestrator's only door into serve: besides the client it names the
few of serve's types and pure helpers that a client needs to read the answers and to
check a task file before sending it (specs, rows, checksum comparisons).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypedDict

import httpx
from httpx import USE_CLIENT_DEFAULT
from pydantic import JsonValue

from partisim.errors import PartisimError, ServerError, ServerUnavailable
from partisim.fleet import DEFAULT_SERVER, client_token, default_server, env_ca_file
from partisim.fleet.client import Query, ssl_failure_reason, tls_context, transport_reason
from partisim.protocol import BatchInfo, ChartData, MemberView, Submitted, Summary, TaskList, TaskView, WorkerList
from partisim.protocol.serve_api import BatchList, Cancelled, VerifyRequest, VerifyStarted
from partisim.serve.queue.specs import (
    load_task_document,
    load_task_file,
    parse_engine_list,
    parse_int_list,
    parse_int_values,
    step_warnings,
    sweep,
)
from partisim.serve.queue.task import TaskSpec
from partisim.serve.results.rows import STATUS_LABELS, flatten, ordered
from partisim.serve.results.verify import Check, compare_checksums
from partisim.sim.params import ApiParams

#: most task objects in one ``POST /api/tasks`` of `ServerClient.submit`
SUBMIT_CHUNK = 10_000

__all__ = [
    "TaskObject",
    "ServerClient",
    "Export",
    "DEFAULT_SERVER",
    "default_server",
    "EXPORT_FORMATS",
    # what a client needs of serve's own types and pure helpers
    "TaskSpec",
    "load_task_file",
    "load_task_document",
    "parse_engine_list",
    "parse_int_list",
    "parse_int_values",
    "step_warnings",
    "sweep",
    "Check",
    "compare_checksums",
    "STATUS_LABELS",
    "flatten",
    "ordered",
]

#: what ``partisim results`` can write, and the server format each is made from
EXPORT_FORMATS = {"csv": "csv", "json": "ndjson", "ndjson": "ndjson"}
#: the longest wait for the next bytes of an export (the server reads a page meanwhile)
EXPORT_READ_TIMEOUT_S = 300.0


class _TaskObjectFields(TypedDict):
    benchmark: str
    params: ApiParams


class TaskObject(_TaskObjectFields, total=False):
    """One task object of ``POST /api/tasks``, as `serve.queue.specs` reads it: the
    optional keys are left out when they hold their default."""

    timeout: float
    threads: int
    priority: int
    label: str
    repeat: int


@dataclass
class Export:
    """An export being received (`ServerClient.export`): ``total`` rows will come."""

    format: str
    total: int
    _response: httpx.Response
    _base_url: str

    def chunks(self) -> Iterator[str]:
        """The body as text, as it arrives."""
        try:
            yield from self._response.iter_text()
        except httpx.HTTPError as exc:
            raise PartisimError(
                f"la exportación desde {self._base_url} se cortó antes de terminar ({type(exc).__name__}); "
                "vuelva a intentarlo"
            ) from None

    def lines(self) -> Iterator[str]:
        """The body line by line (NDJSON: one task per line)."""
        pending = ""
        for chunk in self.chunks():
            pending += chunk
            *complete, pending = pending.split("\n")
            yield from complete
        if pending:
            yield pending


class ServerClient:
    """``ServerClient("http://127.0.0.1:8000").summary()``."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        token: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.base_url = (base_url or default_server()).rstrip("/")
        token = token if token is not None else client_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            trust_env=False,
            headers=headers,
            verify=tls_context(ca_file or env_ca_file()),
        )

    def __enter__(self) -> ServerClient:
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
        json: object = None,
        params: Query | None = None,
        read_timeout: float | None = None,
    ) -> JsonValue:
        timeout = (
            USE_CLIENT_DEFAULT
            if read_timeout is None
            else httpx.Timeout(self._http.timeout.connect or 30.0, read=read_timeout)
        )
        try:
            response = self._http.request(method, path, json=json, params=params, timeout=timeout)
        except (httpx.InvalidURL, httpx.HTTPError) as exc:
            raise self._failure(exc) from None
        body = self._check(response)
        if body is None:
            raise PartisimError(f"{self.base_url} no parece un servidor partisim (respuesta no JSON)")
        return body

    def _failure(self, exc: Exception) -> PartisimError:
        """The Spanish error for a request that got no answer."""
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)):
            reason = ssl_failure_reason(exc)
            if reason is not None:
                return PartisimError(
                    f"{self.base_url}: fallo de TLS ({reason}); si serve usa un certificado "
                    "propio, indique su autoridad con --ca-file o PARTISIM_CA_FILE"
                )
            return ServerUnavailable(self.base_url)
        if isinstance(exc, httpx.InvalidURL):
            return PartisimError(f"dirección de servidor inválida: {self.base_url}")
        return PartisimError(f"error al hablar con el servidor {self.base_url}: {transport_reason(exc)}")

    def _check(self, response: httpx.Response) -> JsonValue:
        """The decoded body (None if not JSON); `ServerError` with the server's message
        for a 4xx/5xx."""
        body: JsonValue
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 401:
            message = body.get("error") if isinstance(body, dict) else None
            raise ServerError(
                f"{self.base_url} exige un token: {message or 'no autorizado'}. Indíquelo con "
                "--token-file o PARTISIM_TOKEN",
                401,
            )
        if response.status_code >= 400:
            message = body.get("error") if isinstance(body, dict) else None
            raise ServerError(
                str(message) if message else f"el servidor respondió HTTP {response.status_code}", response.status_code
            )
        return body

    # -- routes -------------------------------------------------------------------

    def submit(self, tasks: list[TaskObject] | TaskObject, *, batch: str | None = None) -> Submitted:
        """Queue a list of task objects (or one), as one batch. A long list goes in
        requests of `SUBMIT_CHUNK` tasks (each body well inside serve's size limit), the
        later ones into the batch the first one made; should one fail, the tasks of the
        earlier ones stay queued."""
        items = tasks if isinstance(tasks, list) else [tasks]
        answers: list[Submitted] = []
        for start in range(0, max(len(items), 1), SUBMIT_CHUNK):
            body: dict[str, object] = {"tasks": items[start : start + SUBMIT_CHUNK]}
            if batch is not None:
                body["batch"] = batch
            answers.append(Submitted.model_validate(self._request("POST", "/api/tasks", json=body)))
            batch = answers[-1].batch
        if len(answers) == 1:
            return answers[0]
        return Submitted(
            batch=answers[0].batch,
            ids=[i for a in answers for i in a.ids],
            count=sum(a.count for a in answers),
            warning=answers[-1].warning,
            warnings=list(dict.fromkeys(w for a in answers for w in a.warnings)),
        )

    def tasks(self, *, status: str | None = None, batch: str | None = None, limit: int | None = None) -> list[TaskView]:
        """The newest tasks (one page: at most ``limit`` and the server's page size);
        `iter_tasks` reads them all."""
        return self.tasks_page(status=status, batch=batch, limit=limit).tasks

    def tasks_page(
        self,
        *,
        status: str | None = None,
        batch: str | None = None,
        limit: int | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        originals: bool = False,
    ) -> TaskList:
        """One page of ``GET /api/tasks``, with the ``next`` cursor."""
        query: dict[str, str | int | None] = {
            "status": status,
            "batch": batch,
            "limit": limit,
            "after_seq": after_seq,
            "before_seq": before_seq,
            "originals": "true" if originals else None,
        }
        query = {k: v for k, v in query.items() if v is not None}
        return TaskList.model_validate(self._request("GET", "/api/tasks", params=query))

    def iter_tasks(
        self, *, status: str | None = None, batch: str | None = None, originals: bool = False, page: int = 1000
    ) -> Iterator[TaskView]:
        """Every task of the selection, oldest first, page by page (following ``next``)."""
        after = 0
        while True:
            answer = self.tasks_page(status=status, batch=batch, limit=page, after_seq=after, originals=originals)
            yield from answer.tasks
            if answer.next is None:
                return
            after = answer.next

    @contextmanager
    def export(
        self, fmt: str, *, status: str | None = None, batch: str | None = None, originals: bool = False
    ) -> Iterator[Export]:
        """``GET /api/export`` as a stream: ``with client.export("csv") as e: e.chunks()``."""
        query = {
            k: v
            for k, v in {
                "format": fmt,
                "status": status,
                "batch": batch,
                "originals": "true" if originals else None,
            }.items()
            if v is not None
        }
        timeout = httpx.Timeout(self._http.timeout.connect or 30.0, read=EXPORT_READ_TIMEOUT_S)
        try:
            context = self._http.stream("GET", "/api/export", params=query, timeout=timeout)
            response = context.__enter__()
        except (httpx.InvalidURL, httpx.HTTPError) as exc:
            raise self._failure(exc) from None
        try:
            if response.status_code >= 400:
                response.read()
                self._check(response)
            total = response.headers.get("x-total-count")
            if total is None or not total.isdigit():
                raise PartisimError(f"{self.base_url} no parece un servidor partisim (exportación sin X-Total-Count)")
            yield Export(fmt, int(total), response, self.base_url)
        finally:
            context.__exit__(None, None, None)

    def task(self, task_id: str, *, wait: float | None = None) -> TaskView:
        query = {"wait": wait} if wait else {}
        body = self._request("GET", f"/api/tasks/{task_id}", params=query, read_timeout=(wait or 0) + 30.0)
        return TaskView.model_validate(body)

    def cancel(self, task_id: str) -> Cancelled:
        return Cancelled.model_validate(self._request("DELETE", f"/api/tasks/{task_id}"))

    def workers(self) -> list[MemberView]:
        return WorkerList.model_validate(self._request("GET", "/api/workers")).workers

    def summary(self, *, batch: str | None = None, wait: float | None = None) -> Summary:
        query: dict[str, str | float] = {"batch": batch} if batch else {}
        if wait:
            query["wait"] = wait
        body = self._request("GET", "/api/summary", params=query, read_timeout=(wait or 0) + 30.0)
        return Summary.model_validate(body)

    def batches(self, limit: int | None = None) -> list[BatchInfo]:
        query = {"limit": limit} if limit else {}
        return BatchList.model_validate(self._request("GET", "/api/batches", params=query)).batches

    def charts(self, batch: str | None = None, *, contended: bool = False) -> ChartData:
        """Chart data of one batch (``"latest"``) or of every batch (None); ``contended``:
        with the runs measured on a busy machine too."""
        query: dict[str, str] = {"batch": batch} if batch else {}
        if contended:
            query["contended"] = "1"
        return ChartData.model_validate(self._request("GET", "/api/charts", params=query))

    def verify(self, count: int, *, batch: str | None = None) -> VerifyStarted:
        body = VerifyRequest(count=count, batch=batch or None).model_dump(exclude_none=True)
        return VerifyStarted.model_validate(self._request("POST", "/api/verify", json=body))
