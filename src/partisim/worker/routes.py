"""The routes of the worker's HTTP API (the worker API of docs/arquitectura.md and the
README): they parse, call the app's `WorkerService` and serialise, nothing else.

The app that holds this router is assembled in `worker.app` (error handlers,
middleware, the request schema of the task routes).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response

from partisim.errors import ParamsError, PartisimError, WorkerFailed
from partisim.protocol import (
    BATCH_MAX,
    TASK_ID_MAX,
    BatchAnswer,
    CurrentTasks,
    ErrorBody,
    ExecuteBatchReply,
    ExecuteResult,
    HealthReport,
    History,
    PingReply,
    TaskState,
    WorkerStatus,
)
from partisim.worker.payload import TaskRequest, parse_batch_request, parse_task_request
from partisim.worker.responses import (
    count_refusal,
    error_response,
    http_error,
    model_response,
    record_code,
    replay_fields,
    replay_headers,
    service_of,
)
from partisim.worker.service import WorkerService
from partisim.worker.tasks import STATES, TaskRecord

__all__ = ["router", "TASK_ROUTES", "MIN_TIMEOUT_S", "HISTORY_MAX"]

#: the shortest deadline a task gets: below it no task can even start
MIN_TIMEOUT_S = 0.5
#: the most records one /history answer holds (and its default)
HISTORY_MAX = 1000
#: the routes that take a task request as their body (their schema is added by the app)
TASK_ROUTES = ("/execute", "/tasks")
#: what /ping and /health tell a caller without the token, while one is set: liveness
_LIVENESS = {"status", "timestamp", "message"}

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 422)}
_TASK_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 409, 422, 429, 500, 503, 504)
}

router = APIRouter()


def _authorized(request: Request) -> bool:
    """The caller showed the token, or none is needed (set by `BearerAuth`)."""
    return bool(getattr(request.state, "authorized", False))


def _state(rec: TaskRecord, service: WorkerService) -> TaskState:
    return rec.state(service.worker_id, record_code(rec))


# With a token set, an anonymous caller learns only that the worker is alive.
@router.get(
    "/ping",
    responses={200: {"model": PingReply}},
    summary="¿Está vivo? (sin autenticación; sin token solo dice que está activo)",
)
async def ping(request: Request) -> Response:
    full = _authorized(request)
    return model_response(service_of(request).ping(full=full), only=None if full else _LIVENESS)


@router.get(
    "/health",
    responses={200: {"model": HealthReport}, 503: {"model": HealthReport}},
    summary="Salud del worker y de su runner (sin autenticación; sin token solo el estado)",
)
async def health(request: Request) -> Response:
    full = _authorized(request)
    report = await service_of(request).health(full=full)
    code = 200 if report.status == "healthy" else 503
    return model_response(report, status_code=code, only=None if full else _LIVENESS)


@router.get("/status", responses={200: {"model": WorkerStatus}, **_ERRORS}, summary="Estado detallado")
async def worker_status(request: Request) -> Response:
    return model_response(await service_of(request).status())


async def _submit(request: Request) -> tuple[TaskRecord, bool]:
    service = service_of(request)
    req = parse_task_request(await request.body(), service.settings.limits)
    if req.task_id:
        request.state.task_id = req.task_id
    rec, created = await _admit(service, req)
    request.state.task_id = rec.task_id
    return rec, created


async def _admit(service: WorkerService, req: TaskRequest) -> tuple[TaskRecord, bool]:
    # The deadline is brought into [MIN_TIMEOUT_S, --max-timeout] and reported back:
    # `timeout` (applied) and `timeout_requested` in every answer.
    settings = service.settings
    asked = req.timeout
    timeout = settings.max_timeout if asked is None else min(max(asked, MIN_TIMEOUT_S), settings.max_timeout)
    return await service.tasks().submit(
        benchmark=req.benchmark,
        engine=req.engine,
        params=req.params,
        timeout=timeout,
        task_id=req.task_id,
        timeout_requested=asked,
        threads=req.threads,
    )


@router.post(
    "/execute",
    responses={200: {"model": ExecuteResult}, **_TASK_ERRORS},
    summary="Ejecuta una simulación y espera su resultado",
)
async def execute(request: Request) -> Response:
    service = service_of(request)
    rec, created = await _submit(request)
    replay = replay_headers(rec, created)
    await service.tasks().wait(rec)
    if rec.status == "success" and rec.result is not None:
        if replay:
            return model_response(rec.result.model_copy(update=replay_fields(rec)), headers=replay)
        return model_response(rec.result)
    answer = error_response(
        rec.error or WorkerFailed("la tarea no terminó", 500),
        service,
        rec.task_id,
        refused=False,
        status="cancelled" if rec.status == "cancelled" else None,
    )
    answer.headers.update(replay)
    return answer


@router.post(
    "/execute/batch",
    responses={200: {"model": ExecuteBatchReply}, **{c: {"model": ErrorBody} for c in (400, 401, 422)}},
    summary=f"Ejecuta de 1 a {BATCH_MAX} simulaciones, una tras otra, y espera sus resultados",
)
async def execute_batch(request: Request) -> Response:
    """Each task runs as ``POST /execute`` would run it (its id, replay window, timeout,
    record), one after another in one slot; its answer carries the HTTP code that
    ``/execute`` would have given it. A task that is wrong fails alone."""
    service = service_of(request)
    requests = parse_batch_request(await request.body(), service.settings.limits)
    answers = [await _answer(service, req) for req in requests]
    service.metrics.batch_answered(len(answers))
    return model_response(ExecuteBatchReply(worker_id=service.worker_id, answers=answers))


async def _answer(service: WorkerService, req: TaskRequest | ParamsError) -> BatchAnswer:
    """One task of a batch, answered as ``POST /execute`` answers it."""
    if isinstance(req, ParamsError):
        return _failed_answer(service, req, None, refused=True)
    try:
        rec, created = await _admit(service, req)
    except PartisimError as exc:
        return _failed_answer(service, exc, req.task_id, refused=True)
    replayed = bool(replay_headers(rec, created))
    await service.tasks().wait(rec)
    if rec.status == "success" and rec.result is not None:
        result = rec.result.model_copy(update=replay_fields(rec)) if replayed else rec.result
        return BatchAnswer(code=200, result=result)
    error = rec.error or WorkerFailed("la tarea no terminó", 500)
    return _failed_answer(service, error, rec.task_id, status="cancelled" if rec.status == "cancelled" else None)


def _failed_answer(
    service: WorkerService, exc: PartisimError, task_id: str | None, *, refused: bool = False, status: str | None = None
) -> BatchAnswer:
    code, word = http_error(exc)
    if refused:
        count_refusal(service, code)
    field = exc.field if isinstance(exc, ParamsError) else None
    return BatchAnswer(
        code=code, error=ErrorBody(status=status or word, error=exc.message, task_id=task_id, field=field)
    )


@router.post(
    "/tasks",
    status_code=202,
    responses={202: {"model": TaskState}, 200: {"model": TaskState}, **_TASK_ERRORS},
    summary="Encola una simulación sin esperar (consulte GET /tasks/{task_id})",
)
async def submit(request: Request) -> Response:
    rec, created = await _submit(request)
    replay = replay_headers(rec, created)
    state = _state(rec, service_of(request))
    return model_response(
        state.model_copy(update=replay_fields(rec)) if replay else state,
        status_code=202 if created else 200,
        headers={"Location": "/tasks/" + quote(rec.task_id, safe=""), **replay},  # ids may be any text
    )


# `:path`: a task_id may hold "/" (sent as %2F or as is); any printable text is an id
@router.get(
    "/tasks/{task_id:path}",
    responses={200: {"model": TaskState}, 404: {"model": ErrorBody}, **_ERRORS},
    summary="Estado y resultado de una tarea",
)
async def get_task(task_id: str, request: Request) -> Response:
    request.state.task_id = task_id[:TASK_ID_MAX]
    service = service_of(request)
    return model_response(_state(service.tasks().get(task_id), service))


@router.delete(
    "/tasks/{task_id:path}",
    responses={200: {"model": TaskState}, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}, **_ERRORS},
    summary="Cancela una tarea en espera o en curso (detiene su cálculo)",
)
async def cancel_task(task_id: str, request: Request) -> Response:
    request.state.task_id = task_id[:TASK_ID_MAX]
    service = service_of(request)
    rec = await service.tasks().cancel(task_id)
    return model_response(_state(rec, service))


@router.get(
    "/history", responses={200: {"model": History}, **_ERRORS}, summary="Últimas tareas (las más recientes primero)"
)
async def history(
    request: Request,
    limit: int = Query(HISTORY_MAX, ge=1, description=f"cuántas (como máximo {HISTORY_MAX})"),
    status: str | None = Query(None, description="filtra por estado: " + ", ".join(STATES)),
) -> Response:
    if status is not None and status not in STATES:
        raise ParamsError(f"status: estado desconocido {status[:40]!r}; válidos: {', '.join(STATES)}", field="status")
    service = service_of(request)
    manager = service.tasks()
    records = manager.history(min(limit, HISTORY_MAX), status)
    tasks = [_state(r, service) for r in records]
    return model_response(
        History(
            worker_id=service.worker_id,
            count=len(records),
            tasks=tasks,
            task_history=tasks,
            statistics=manager.statistics(),
        )
    )


@router.get(
    "/current",
    responses={200: {"model": CurrentTasks}, **_ERRORS},
    summary="Tareas en curso ahora (y cuántas esperan en la cola)",
)
async def current(request: Request) -> Response:
    service = service_of(request)
    manager = service.tasks()
    running = manager.current()
    return model_response(
        CurrentTasks(
            worker_id=service.worker_id,
            count=len(running),
            tasks=[_state(r, service) for r in running],
            queued=manager.queued,
        )
    )


@router.get("/metrics", response_class=PlainTextResponse, responses=_ERRORS, summary="Métricas en formato Prometheus")
async def metrics(request: Request) -> Response:
    body, content_type = service_of(request).render_metrics(request.headers.get("accept"))
    return Response(body, media_type=content_type)
