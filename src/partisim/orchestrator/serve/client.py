"""Client for the REST API of ``partisim serve``, used by the CLI commands and the menu.

``ServerClient(base_url)`` has one method per route and answers typed models. When
``serve`` is not running it raises `ServerUnavailable`, whose Spanish message says so
and how to start it; any 4xx/5xx answer becomes `ServerError` carrying the server's
own message. It presents serve's token (``token``, else ``PARTISIM_TOKEN_FILE`` /
``PARTISIM_TOKEN``) and verifies an https serve against ``ca_file`` (else
``PARTISIM_CA_FILE``, else the system's CAs). Below it, what the CLI and the menu do with it: submit a file or a
sweep, wait for a batch, verify a batch on another worker, save an export.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from partisim.errors import BatchNotFound, PartisimError, ServerError, ServerUnavailable
from partisim.files import atomic_writer
from partisim.fleet import DEFAULT_SERVER, client_token, default_server, env_ca_file
from partisim.orchestrator.client import ssl_failure_reason, tls_context, transport_reason
from partisim.orchestrator.serve.results import Check, compare_checksums
from partisim.orchestrator.serve.specs import load_task_file, parse_engine_list, parse_int_list, step_warnings, sweep
from partisim.orchestrator.serve.task import TaskSpec
from partisim.protocol import BatchInfo, ChartData, MemberView, Submitted, Summary, TaskList, TaskView, WorkerList

__all__ = [
    "ServerClient",
    "Export",
    "DEFAULT_SERVER",
    "default_server",
    "task_objects",
    "submit_file",
    "submit_sweep",
    "require_batch",
    "wait_batch",
    "verify_batch",
    "save_export",
    "EXPORT_FORMATS",
]

#: what ``partisim results`` can write, and the server format each is made from
EXPORT_FORMATS = {"csv": "csv", "json": "ndjson", "ndjson": "ndjson"}
#: the longest wait for the next bytes of an export (the server reads a page meanwhile)
EXPORT_READ_TIMEOUT_S = 300.0


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

    def _request(self, method: str, path: str, *, read_timeout: float | None = None, **kw: Any) -> Any:
        if read_timeout is not None:
            kw["timeout"] = httpx.Timeout(self._http.timeout.connect or 30.0, read=read_timeout)
        try:
            response = self._http.request(method, path, **kw)
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

    def _check(self, response: httpx.Response) -> Any:
        """The decoded body (None if not JSON); `ServerError` with the server's message
        for a 4xx/5xx."""
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
            raise ServerError(message or f"el servidor respondió HTTP {response.status_code}", response.status_code)
        return body

    # -- routes -------------------------------------------------------------------

    def submit(self, tasks: list[dict[str, Any]] | dict[str, Any], *, batch: str | None = None) -> Submitted:
        """Queue a list of task objects (or one)."""
        body: dict[str, Any] = {"tasks": tasks if isinstance(tasks, list) else [tasks]}
        if batch is not None:
            body["batch"] = batch
        return Submitted.model_validate(self._request("POST", "/api/tasks", json=body))

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
        query: dict[str, Any] = {
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

    def cancel(self, task_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._request("DELETE", f"/api/tasks/{task_id}")
        return answer

    def workers(self) -> list[MemberView]:
        return WorkerList.model_validate(self._request("GET", "/api/workers")).workers

    def summary(self, *, batch: str | None = None, wait: float | None = None) -> Summary:
        query: dict[str, Any] = {"batch": batch} if batch else {}
        if wait:
            query["wait"] = wait
        body = self._request("GET", "/api/summary", params=query, read_timeout=(wait or 0) + 30.0)
        return Summary.model_validate(body)

    def batches(self, limit: int | None = None) -> list[BatchInfo]:
        query = {"limit": limit} if limit else {}
        return [BatchInfo.model_validate(b) for b in self._request("GET", "/api/batches", params=query)["batches"]]

    def charts(self, batch: str | None = None) -> ChartData:
        """Chart data of one batch (``"latest"``) or of every batch (None)."""
        query = {"batch": batch} if batch else {}
        return ChartData.model_validate(self._request("GET", "/api/charts", params=query))

    def verify(self, count: int, *, batch: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"count": count}
        if batch:
            body["batch"] = batch
        answer: dict[str, Any] = self._request("POST", "/api/verify", json=body)
        return answer


# -- what the CLI and the menu do with it ---------------------------------------------


def task_objects(specs: list[TaskSpec]) -> list[dict[str, Any]]:
    """Validated specs -> the task objects of ``POST /api/tasks``."""
    return [
        {
            "benchmark": s.benchmark,
            "params": s.params,
            **({"timeout": s.timeout} if s.timeout else {}),
            **({"threads": s.threads} if s.threads > 1 else {}),
        }
        for s in specs
    ]


def _with_warnings(answer: Submitted, specs: list[TaskSpec]) -> Submitted:
    """The answer with the coarse-step warnings of ``specs``, worked out here too: a serve
    of an older version answers none."""
    found = list(dict.fromkeys([*answer.warnings, *step_warnings(specs)]))
    return answer if found == answer.warnings else answer.model_copy(update={"warnings": found})


def submit_file(client: ServerClient, path: str, *, batch: str | None = None) -> Submitted:
    """Validate a task file here (clear errors with the file name), then queue it."""
    specs = load_task_file(path)
    return _with_warnings(client.submit(task_objects(specs), batch=batch), specs)


#: how `partisim sweep` names the parameters it sweeps
SWEEP_FLAGS = {"NUM_PARTICULAS": "--particles", "NUM_PASOS": "--steps", "SEMILLA": "--seeds"}


def submit_sweep(
    client: ServerClient,
    *,
    engines: str,
    particles: str,
    steps: str,
    seeds: str,
    repeat: int = 1,
    timeout: float | None = None,
    threads: int = 1,
    batch: str | None = None,
    params: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
) -> Submitted:
    """The cartesian product engines x particles x steps x seeds, as one batch (each
    simulation on ``threads`` threads); ``params`` (API names) are the same for every
    task, ``names`` what the user called them."""
    specs = sweep(
        parse_engine_list(engines),
        parse_int_list(particles, "--particles"),
        parse_int_list(steps, "--steps"),
        parse_int_list(seeds, "--seeds"),
        repeat=repeat,
        timeout=timeout,
        threads=threads,
        params=params,
        names={**SWEEP_FLAGS, **(names or {})},
    )
    return _with_warnings(client.submit(task_objects(specs), batch=batch), specs)


def require_batch(client: ServerClient, batch: str) -> Summary:
    """The batch's summary; `BatchNotFound` (naming the latest batches) when the queue
    has no batch with that id. wait, results and report all ask this first."""
    state = client.summary(batch=batch)
    if state.total == 0:
        raise BatchNotFound(batch, [b.batch for b in client.batches(limit=3)])
    return state


def wait_batch(
    client: ServerClient,
    batch: str | None,
    *,
    timeout: float | None = None,
    on_progress: Callable[[Summary], None] = lambda _: None,
) -> Summary:
    """Block until the batch has nothing queued or running; ``on_progress`` sees every
    summary on the way. Raises `TimeoutError` after ``timeout`` seconds, `BatchNotFound`
    for an unknown batch."""
    deadline = None if timeout is None else time.monotonic() + timeout
    state = require_batch(client, batch) if batch else client.summary()
    if state.total == 0:
        raise PartisimError("la cola está vacía")
    while True:
        on_progress(state)
        if state.done:
            return state
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise TimeoutError(batch or "cola")
        wait = 2.0 if left is None else max(0.05, min(2.0, left))
        state = client.summary(batch=batch, wait=wait)


def verify_batch(
    client: ServerClient,
    batch: str | None,
    count: int,
    *,
    timeout: float | None = None,
    on_progress: Callable[[Summary], None] = lambda _: None,
) -> list[Check]:
    """Run ``count`` sampled successful tasks again on another worker; compare checksums."""
    answer = client.verify(count, batch=batch)
    wait_batch(client, answer["batch"], timeout=timeout, on_progress=on_progress)
    reruns = list(client.iter_tasks(batch=answer["batch"]))
    originals = {p["original"]: client.task(p["original"]) for p in answer["pairs"]}
    return compare_checksums(originals, reruns)


class _CsvRecords:
    """Counts the records of a CSV text fed in pieces: line ends outside quotes (a quoted
    field may hold line ends; an escaped quote is two quotes, so the state is right)."""

    def __init__(self) -> None:
        self.quoted = False
        self.records = 0

    def feed(self, text: str) -> None:
        for k, part in enumerate(text.split('"')):
            if k:
                self.quoted = not self.quoted
            if not self.quoted:
                self.records += part.count("\n")


def save_export(
    client: ServerClient,
    output: str | Path | None,
    fmt: str,
    *,
    status: str | None = None,
    batch: str | None = None,
    originals: bool = True,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Write the export of a selection as it arrives: to ``output`` atomically (a hidden
    file renamed at the end; on any error the target is left as it was) or to stdout
    (None). ``fmt`` is csv, json (an array, one task per line) or ndjson. ``originals``
    leaves out verification re-runs, unless the selection holds nothing else.
    ``on_progress(rows, total)`` follows it. Returns the number of rows written.

    Raises `PartisimError` when the selection is empty, and when fewer rows arrived
    than the server announced (never a short file that looks complete)."""
    wire = EXPORT_FORMATS[fmt]
    if originals:
        with client.export(wire, status=status, batch=batch, originals=True) as export:
            if export.total:
                return _save(export, output, fmt, status, on_progress)
    with client.export(wire, status=status, batch=batch) as export:
        if export.total == 0:
            raise PartisimError(f"no hay tareas en el lote {batch}" if batch else "la cola está vacía")
        return _save(export, output, fmt, status, on_progress)


def _save(
    export: Export, output: str | Path | None, fmt: str, status: str | None, on_progress: Callable[[int, int], None]
) -> int:
    on_progress(0, export.total)
    if output is None:
        rows = _copy_export(export, fmt, sys.stdout, on_progress)
        _check_complete(rows, export.total, status)
        return rows
    with atomic_writer(output) as handle:
        rows = _copy_export(export, fmt, handle, on_progress)
        _check_complete(rows, export.total, status)  # inside: a short export is never renamed in
    return rows


def _check_complete(rows: int, total: int, status: str | None) -> None:
    # without a status filter the set of rows is fixed when the export starts
    if status is None and rows != total:
        raise PartisimError(f"la exportación trajo {rows} de {total} tareas; no se escribió el archivo")


def _copy_export(export: Export, fmt: str, out: IO[str], on_progress: Callable[[int, int], None]) -> int:
    rows = 0
    if fmt == "json":  # NDJSON lines -> one JSON array, one task per line
        out.write("[")
        for line in export.lines():
            out.write(("\n" if rows == 0 else ",\n") + line)
            rows += 1
            if rows % 1000 == 0:
                on_progress(rows, export.total)
        out.write("\n]\n")
    elif fmt == "csv":
        counter = _CsvRecords()
        for chunk in export.chunks():
            out.write(chunk)
            counter.feed(chunk)
            on_progress(max(0, counter.records - 1), export.total)  # minus the header
        rows = max(0, counter.records - 1)
    else:
        for chunk in export.chunks():
            out.write(chunk)
            rows += chunk.count("\n")
            on_progress(rows, export.total)
    on_progress(rows, export.total)
    return rows
