"""The worker's HTTP API (the worker API of docs/arquitectura.md and the README) on FastAPI.

`create_app(settings)` builds the app; the routes only parse, call
`WorkerService` and serialise. Errors are `partisim.errors` exceptions inside
and become HTTP answers in one place, `http_error`: every error body is
`{"status": ..., "error": "<mensaje>"}`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from partisim import __version__
from partisim.errors import (
    AuthError,
    ParamsError,
    PartisimError,
    TaskRejected,
    TaskTimedOut,
    WorkerFailed,
    WorkerUnavailable,
    explain_validation,
)
from partisim.fleet import Identity, resolve_identity
from partisim.protocol import (
    CurrentTasks,
    ErrorBody,
    ExecuteResult,
    HealthReport,
    History,
    PingReply,
    TaskState,
    WorkerStatus,
)
from partisim.worker.middleware import BearerAuth, BodyLimit, RequestLog, json_bytes
from partisim.worker.payload import parse_task_request, request_schema
from partisim.worker.service import WorkerService
from partisim.worker.settings import WorkerSettings
from partisim.worker.tasks import STATES, TaskRecord, iso

__all__ = ["create_app", "http_error"]

log = logging.getLogger("partisim.worker")

OPEN_PATHS = frozenset({"/ping", "/health"})
MIN_TIMEOUT_S = 0.5

_REJECTED_WORDS = {
    400: "invalid",
    404: "not_found",
    405: "not_allowed",
    409: "conflict",
    413: "invalid",
    422: "invalid",
    429: "busy",
}


def http_error(exc: PartisimError) -> tuple[int, str]:
    """The one mapping from a partisim exception to (HTTP code, body status)."""
    if isinstance(exc, ParamsError):
        return 422, "invalid"
    if isinstance(exc, AuthError):
        return 401, "unauthorized"
    if isinstance(exc, TaskRejected):
        code = exc.status_code if exc.status_code and 400 <= exc.status_code < 500 else 400
        return code, _REJECTED_WORDS.get(code, "rejected")
    if isinstance(exc, WorkerUnavailable):
        return 503, "unavailable"
    if isinstance(exc, TaskTimedOut):
        return 504, "timeout"
    return 500, "error"  # WorkerFailed and anything unforeseen


def _record_code(rec: TaskRecord) -> int | None:
    if rec.status == "success":
        return 200
    return http_error(rec.error)[0] if rec.error else None


def _json_body(body: dict[str, Any], status_code: int, headers: dict[str, str] | None = None) -> Response:
    """An error body as strict JSON (what a client sent is echoed safely, even a lone surrogate)."""
    return Response(json_bytes(body), status_code=status_code, headers=headers, media_type="application/json")


def _error_response(
    exc: PartisimError,
    service: WorkerService | None,
    task_id: str | None = None,
    *,
    refused: bool = True,
    status: str | None = None,
) -> Response:
    """The answer for an error; `refused`: the request itself was turned down (counted in /metrics)."""
    code, word = http_error(exc)
    word = status or word
    body: dict[str, Any] = {"status": word, "error": exc.message}
    if task_id:
        body["task_id"] = task_id
    headers = {}
    if code == 429 and service is not None and service.manager is not None:
        headers["Retry-After"] = str(service.manager.retry_after())
    if code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if refused and service is not None and code in (400, 401, 409, 422, 429, 503):
        service.metrics.request_refused(code)
    return _json_body(body, code, headers)


#: the header of an answer given from a finished task's record (its value: when that
#: run finished, ISO 8601)
REPLAY_HEADER = "X-Partisim-Replayed"


def replay_fields(rec: TaskRecord) -> dict[str, Any]:
    """What marks an answer as a replay: ``replayed`` and the first run's time."""
    return {"replayed": True, "first_run_at": iso(rec.finished_at) if rec.finished_at else None}


def _replay_headers(rec: TaskRecord, created: bool) -> dict[str, str]:
    """The replay header when this request was answered from a finished record (a
    request that joins a task still running gets that run's own answer, unmarked)."""
    if created or not rec.finished or rec.finished_at is None:
        return {}
    return {REPLAY_HEADER: iso(rec.finished_at)}


def _record(rec: TaskRecord, worker_id: str) -> TaskState:
    return rec.state(worker_id, _record_code(rec))


def _json(
    model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None, *, only: set[str] | None = None
) -> Response:
    """A model as strict JSON (its floats are finite by type), serialised by pydantic;
    `only`: just these fields (what an anonymous caller may see)."""
    return Response(
        model.model_dump_json(include=only), status_code=status_code, headers=headers, media_type="application/json"
    )


#: what /ping and /health tell a caller without the token, while one is set: liveness
_LIVENESS = {"status", "timestamp", "message"}


def _authorized(request: Request) -> bool:
    """The caller showed the token, or none is needed (set by `BearerAuth`)."""
    return bool(getattr(request.state, "authorized", False))


_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 422)}
_TASK_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 409, 422, 429, 500, 503, 504)
}


def create_app(settings: WorkerSettings, *, identity: Identity | None = None, port: int | None = None) -> FastAPI:
    """The worker app. `port` is the one actually bound (for `--port 0`)."""
    port = settings.port if port is None else port
    if identity is None:
        identity = resolve_identity(
            settings.host,
            port,
            worker_id=settings.worker_id,
            config_path=settings.config_path,
            config_explicit=settings.config_explicit,
        )
    service = WorkerService(settings, identity, port)
    body_doc = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": request_schema(settings.limits)}}}
    }

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    # redirect_slashes off: "/execute/" is not a path of the contract (a 404, not a redirect)
    app = FastAPI(
        title=f"partisim worker {identity.worker_id}",
        version=__version__,
        lifespan=lifespan,
        redirect_slashes=False,
        description="Servicio worker de partisim: ejecuta simulaciones de colisiones de partículas.",
    )
    app.state.service = service

    # -- errors: one place --

    @app.exception_handler(PartisimError)
    async def _partisim_error(request: Request, exc: PartisimError) -> Response:
        return _error_response(exc, service, getattr(request.state, "task_id", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error_response(ParamsError(explain_validation(exc.errors())[0]), service)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"ruta no encontrada: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"método {request.method} no permitido en {request.url.path}"
        else:
            message = str(exc.detail)
        return _json_body(
            {"status": _REJECTED_WORDS.get(exc.status_code, "error"), "error": message},
            exc.status_code,
            getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("error interno en %s %s", request.method, request.url.path)
        return _json_body({"status": "error", "error": "error interno del worker; vea su registro"}, 500)

    # -- routes --

    # With a token set, an anonymous caller learns only that the worker is alive.
    @app.get(
        "/ping",
        responses={200: {"model": PingReply}},
        summary="¿Está vivo? (sin autenticación; sin token solo dice que está activo)",
    )
    async def ping(request: Request) -> Response:
        full = _authorized(request)
        return _json(service.ping(full=full), only=None if full else _LIVENESS)

    @app.get(
        "/health",
        responses={200: {"model": HealthReport}, 503: {"model": HealthReport}},
        summary="Salud del worker y de su runner (sin autenticación; sin token solo el estado)",
    )
    async def health(request: Request) -> Response:
        full = _authorized(request)
        report = await service.health(full=full)
        return _json(report, status_code=200 if report.status == "healthy" else 503, only=None if full else _LIVENESS)

    @app.get("/status", responses={200: {"model": WorkerStatus}, **_ERRORS}, summary="Estado detallado")
    async def status() -> Response:
        return _json(await service.status())

    async def _submit(request: Request) -> tuple[TaskRecord, bool]:
        req = parse_task_request(await request.body(), settings.limits)
        if req.task_id:
            request.state.task_id = req.task_id
        # The deadline is brought into [MIN_TIMEOUT_S, --max-timeout] (below that no task can even
        # start) and reported back: `timeout` (applied) and `timeout_requested` in every answer.
        timeout = (
            settings.max_timeout if req.timeout is None else min(max(req.timeout, MIN_TIMEOUT_S), settings.max_timeout)
        )
        rec, created = await service.tasks().submit(
            benchmark=req.benchmark,
            engine=req.engine,
            params=req.params,
            timeout=timeout,
            task_id=req.task_id,
            timeout_requested=req.timeout,
            threads=req.threads,
        )
        request.state.task_id = rec.task_id
        return rec, created

    @app.post(
        "/execute",
        openapi_extra=body_doc,
        responses={200: {"model": ExecuteResult}, **_TASK_ERRORS},
        summary="Ejecuta una simulación y espera su resultado",
    )
    async def execute(request: Request) -> Response:
        rec, created = await _submit(request)
        replay = _replay_headers(rec, created)
        await service.tasks().wait(rec)
        if rec.status == "success" and rec.result is not None:
            if replay:
                return _json(rec.result.model_copy(update=replay_fields(rec)), headers=replay)
            return _json(rec.result)
        answer = _error_response(
            rec.error or WorkerFailed("la tarea no terminó", 500),
            service,
            rec.task_id,
            refused=False,
            status="cancelled" if rec.status == "cancelled" else None,
        )
        answer.headers.update(replay)
        return answer

    @app.post(
        "/tasks",
        status_code=202,
        openapi_extra=body_doc,
        responses={202: {"model": TaskState}, 200: {"model": TaskState}, **_TASK_ERRORS},
        summary="Encola una simulación sin esperar (consulte GET /tasks/{task_id})",
    )
    async def submit(request: Request) -> Response:
        rec, created = await _submit(request)
        replay = _replay_headers(rec, created)
        state = _record(rec, service.worker_id)
        return _json(
            state.model_copy(update=replay_fields(rec)) if replay else state,
            status_code=202 if created else 200,
            headers={"Location": "/tasks/" + quote(rec.task_id, safe=""), **replay},
        )  # ids may be any text

    # `:path`: a task_id may hold "/" (sent as %2F or as is); any printable text is an id
    @app.get(
        "/tasks/{task_id:path}",
        responses={200: {"model": TaskState}, 404: {"model": ErrorBody}, **_ERRORS},
        summary="Estado y resultado de una tarea",
    )
    async def get_task(task_id: str, request: Request) -> Response:
        request.state.task_id = task_id[:128]
        return _json(_record(service.tasks().get(task_id), service.worker_id))

    @app.delete(
        "/tasks/{task_id:path}",
        responses={200: {"model": TaskState}, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}, **_ERRORS},
        summary="Cancela una tarea en espera o en curso (detiene su cálculo)",
    )
    async def cancel_task(task_id: str, request: Request) -> Response:
        request.state.task_id = task_id[:128]
        rec = await service.tasks().cancel(task_id)
        return _json(_record(rec, service.worker_id))

    @app.get(
        "/history", responses={200: {"model": History}, **_ERRORS}, summary="Últimas tareas (las más recientes primero)"
    )
    async def history(
        limit: int = Query(1000, ge=1, description="cuántas (como máximo 1000)"),
        status: str | None = Query(None, description="filtra por estado: " + ", ".join(STATES)),
    ) -> Response:
        if status is not None and status not in STATES:
            raise ParamsError(
                f"status: estado desconocido {status[:40]!r}; válidos: {', '.join(STATES)}", field="status"
            )
        manager = service.tasks()
        records = manager.history(min(limit, 1000), status)
        tasks = [_record(r, service.worker_id) for r in records]
        return _json(
            History(
                worker_id=service.worker_id,
                count=len(records),
                tasks=tasks,
                task_history=tasks,
                statistics=manager.statistics(),
            )
        )

    @app.get(
        "/current",
        responses={200: {"model": CurrentTasks}, **_ERRORS},
        summary="Tareas en curso ahora (y cuántas esperan en la cola)",
    )
    async def current() -> Response:
        manager = service.tasks()
        running = manager.current()
        return _json(
            CurrentTasks(
                worker_id=service.worker_id,
                count=len(running),
                tasks=[_record(r, service.worker_id) for r in running],
                queued=manager.queued,
            )
        )

    @app.get("/metrics", response_class=PlainTextResponse, responses=_ERRORS, summary="Métricas en formato Prometheus")
    async def metrics(request: Request) -> Response:
        body, content_type = service.render_metrics(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    # Each add_middleware wraps what is already there, so the last one added runs first:
    # RequestLog (sees everything), then BearerAuth (before any body is read), then BodyLimit.
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_body_bytes, on_refused=service.metrics.request_refused)
    app.add_middleware(
        BearerAuth, token=settings.token, open_paths=OPEN_PATHS, on_refused=service.metrics.request_refused
    )
    app.add_middleware(RequestLog)
    return app
