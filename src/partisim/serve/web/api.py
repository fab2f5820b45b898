"""The REST API of ``partisim serve``: ``/api/tasks``, ``/api/export``, ``/api/workers``,
``/api/summary``, ``/api/batches``, ``/api/verify``, ``/api/health``.

Reads never cut silently: ``/api/tasks`` answers pages of at most ``page_size`` tasks
with a ``next`` cursor while more remain, and ``/api/export`` streams a whole selection
(CSV or NDJSON), reading it page by page in a thread.

Routes parse, call the queue and the scheduler, and answer models of
`partisim.protocol`; errors are ``{"status": "error", "error": "<mensaje>"}`` (client
mistakes are 4xx). The app that holds this router is assembled in `serve.app`.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import JsonValue, ValidationError
from starlette.concurrency import run_in_threadpool

from partisim import __version__
from partisim.errors import ParamsError
from partisim.fleet.advice import queued_without_workers
from partisim.listen.guards import JsonRefused, loads_json
from partisim.protocol import QueueStatus, Submitted, WorkerList
from partisim.protocol.base import STATUS_LABELS
from partisim.protocol.serve_api import (
    VERIFY_MAX,
    BatchList,
    Cancelled,
    ServeHealth,
    VerifyPair,
    VerifyRequest,
    VerifyStarted,
)
from partisim.serve.queue.rows import Selection
from partisim.serve.queue.specs import read_submission, step_warnings
from partisim.serve.queue.task import FINAL_STATUSES, STATUSES, SUCCESS, TaskSpec, new_batch_id, queue_status
from partisim.serve.web.context import state_of, summary, workers
from partisim.serve.web.export import EXPORT_FORMATS, export_chunks
from partisim.serve.web.responses import error_response, model_response

__all__ = ["router", "MAX_WAIT_S", "TOTAL_HEADER"]

#: longest a long-poll request (``?wait=``) is held open
MAX_WAIT_S = 60.0
#: submissions up to these sizes are handled inline in the event loop
SMALL_BODY_BYTES = 4096
SMALL_SUBMISSION = 64
#: a long-polled summary answers at most this often while tasks keep finishing
SUMMARY_MIN_INTERVAL_S = 0.25
#: the largest integer SQLite stores (a cursor beyond it cannot be a seq)
SQLITE_MAX_INT = 2**63 - 1
#: the number of rows an export will hold (sent before the rows, for a progress bar)
TOTAL_HEADER = "X-Total-Count"

router = APIRouter()


def _wait_seconds(raw: str | None) -> float:
    if raw is None or raw == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise ParamsError(f"wait debe ser un número de segundos (recibido {raw!r})", field="wait") from None
    if not 0 <= value <= MAX_WAIT_S:
        raise ParamsError(f"wait debe estar entre 0 y {MAX_WAIT_S:.0f} segundos", field="wait")
    return value


def _limit(raw: str | None, default: int = 1000) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if len(raw) <= 20 else -1
    except ValueError:
        raise ParamsError(f"limit debe ser un número entero (recibido {raw[:40]!r})", field="limit") from None
    if not 1 <= value <= 100_000:
        raise ParamsError("limit debe estar entre 1 y 100000", field="limit")
    return value


def _cursor(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    # SQLite's integers are 64-bit: a longer number is refused before Python builds it
    if len(raw) > 20:
        raise ParamsError(f"{name} debe ser un número entero entre 0 y {SQLITE_MAX_INT}", field=name)
    try:
        value = int(raw)
    except ValueError:
        raise ParamsError(f"{name} debe ser un número entero (recibido {raw!r})", field=name) from None
    if not 0 <= value <= SQLITE_MAX_INT:
        raise ParamsError(f"{name} debe ser un número entero entre 0 y {SQLITE_MAX_INT}", field=name)
    return value


def _body_json(raw: bytes, expected: str) -> JsonValue:
    """The JSON of a request body; 422 naming what is wrong (not JSON, too deep)."""
    try:
        return loads_json(raw)
    except JsonRefused as exc:
        raise ParamsError(f"{exc}; se espera {expected}") from None


def _flag(raw: str | None, name: str) -> bool:
    if raw is None or raw.lower() in ("", "0", "false", "no"):
        return False
    if raw.lower() in ("1", "true", "yes", "si", "sí"):
        return True
    raise ParamsError(f"{name} debe ser true o false (recibido {raw!r})", field=name)


def _selection(request: Request) -> Selection:
    q = request.query_params
    return Selection(
        status=_status_filter(q.get("status")),
        batch=q.get("batch") or None,
        originals=_flag(q.get("originals"), "originals"),
        label=q.get("label") or None,
    )


def _status_filter(raw: str | None) -> QueueStatus | None:
    if raw is None or raw == "":
        return None
    try:
        return queue_status(raw)
    except ValueError:
        raise ParamsError(f"status desconocido {raw!r}; válidos: {', '.join(STATUSES)}", field="status") from None


@router.post("/api/tasks", status_code=201)
async def submit_tasks(request: Request) -> Response:
    state = state_of(request)
    raw = await request.body()
    body = _body_json(raw, 'una tarea, una lista o {"tasks": [...]}')
    # A few tasks are cheaper to handle here than through a thread hop; thousands are
    # validated and inserted in a thread so the event loop keeps dispatching.
    if len(raw) <= SMALL_BODY_BYTES:
        document, batch = read_submission(body)
    else:
        document, batch = await run_in_threadpool(read_submission, body)
    specs = document.specs
    if len(specs) <= SMALL_SUBMISSION:
        advice = document.warnings + step_warnings(specs)
        batch, ids = state.queue.enqueue(specs, batch)
    else:
        advice = document.warnings + await run_in_threadpool(step_warnings, specs)
        batch, ids = await run_in_threadpool(state.queue.enqueue, specs, batch)
    state.scheduler.wake()
    warning = queued_without_workers(len(ids)) if state.executor.active_members() == 0 else None
    return model_response(Submitted(batch=str(batch), ids=ids, count=len(ids), warning=warning, warnings=advice), 201)


@router.get("/api/tasks")
async def list_tasks(request: Request) -> Response:
    """A page of tasks: newest first, or oldest first from ``after_seq``. At most
    ``page_size`` tasks whatever ``limit`` asks; ``next`` is the cursor of the following
    page (pass it as ``after_seq``, or as ``before_seq`` newest first), null on the last."""
    state = state_of(request)
    q = request.query_params
    selection = _selection(request)
    limit = min(_limit(q.get("limit")), state.page_size)
    after, before = _cursor(q.get("after_seq"), "after_seq"), _cursor(q.get("before_seq"), "before_seq")
    if after is not None and before is not None:
        raise ParamsError("use after_seq o before_seq, no ambos", field="before_seq")
    lines, following = await run_in_threadpool(
        state.queue.reads.page, selection, limit=limit, after_seq=after, before_seq=before
    )
    # the rows come as JSON out of SQLite (`TaskQueue.page`): a page decodes nothing
    body = f'{{"tasks":[{",".join(lines)}],"count":{len(lines)},"next":{json.dumps(following)}}}'
    return Response(body, media_type="application/json")


@router.get("/api/export")
async def export(request: Request) -> Response:
    """Every task of the selection, oldest first, as CSV (the columns of ``partisim
    results``) or NDJSON (one task per line, as ``/api/tasks`` shows it). The rows are the
    ones present when the export starts; their number is in the ``X-Total-Count`` header."""
    state = state_of(request)
    fmt = request.query_params.get("format") or "csv"
    if fmt not in EXPORT_FORMATS:
        raise ParamsError(f"format desconocido {fmt!r}; válidos: {', '.join(EXPORT_FORMATS)}", field="format")
    selection = _selection(request)
    upto, total = await run_in_threadpool(state.queue.reads.extent, selection)
    return StreamingResponse(
        export_chunks(state.queue, fmt, selection, upto=upto, page_size=state.page_size),
        media_type=EXPORT_FORMATS[fmt],
        headers={TOTAL_HEADER: str(total), "Cache-Control": "no-store"},
    )


@router.get("/api/tasks/{task_id}")
async def get_task(task_id: str, request: Request) -> Response:
    state = state_of(request)
    wait = _wait_seconds(request.query_params.get("wait"))
    task = state.queue.get(task_id)
    if task is None:
        return error_response(404, f"tarea desconocida: {task_id}")
    if wait > 0 and not task.is_final and not state.notifier.closed:
        await state.notifier.wait_task(task_id, wait)
        task = state.queue.get(task_id) or task
    return model_response(task.view())


@router.delete("/api/tasks/{task_id}")
async def cancel_task(task_id: str, request: Request) -> Response:
    state = state_of(request)
    current = state.queue.get(task_id)
    if current is None:
        return error_response(404, f"tarea desconocida: {task_id}")
    before = state.scheduler.cancel(task_id)
    if before is None:
        now = state.queue.get(task_id) or current
        return error_response(409, f"la tarea {task_id} ya terminó ({STATUS_LABELS[now.status]}); no se puede cancelar")
    return model_response(Cancelled(id=task_id, previous=before.status))


@router.get("/api/workers")
async def list_workers(request: Request) -> Response:
    return model_response(WorkerList(workers=workers(state_of(request))))


@router.get("/api/summary")
async def get_summary(request: Request) -> Response:
    state = state_of(request)
    batch = request.query_params.get("batch") or None
    wait = _wait_seconds(request.query_params.get("wait"))
    if wait > 0 and state.queue.has_pending(batch):
        # Long poll: answer when the batch is done, or after a task finished but no
        # more often than every SUMMARY_MIN_INTERVAL_S, or when ``wait`` runs out.
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + wait
        changed = False
        while not state.notifier.closed and (left := end - loop.time()) > 0:
            if changed:
                left = min(left, start + SUMMARY_MIN_INTERVAL_S - loop.time())
                if left <= 0:
                    break
            changed = await state.notifier.wait_change(left) or changed
            if not state.queue.has_pending(batch):  # asked per finished task: keep it O(1)
                break
    return model_response(summary(state, batch))


@router.get("/api/batches")
async def list_batches(request: Request) -> Response:
    """The newest batches; ``more`` says whether older ones were left out by ``limit``."""
    limit = _limit(request.query_params.get("limit"), 100)
    batches = await run_in_threadpool(state_of(request).queue.reads.batches, limit + 1)
    return model_response(BatchList(batches=batches[:limit], more=len(batches) > limit))


@router.post("/api/verify", status_code=201)
async def verify(request: Request) -> Response:
    state = state_of(request)
    asked = _verify_request(await request.body())
    if isinstance(asked, Response):
        return asked
    batch, count = asked.batch, asked.count
    # drawn by SQLite among every successful original of the selection: none left out
    chosen = await run_in_threadpool(
        state.queue.reads.sample, Selection(status=SUCCESS, batch=batch or None, originals=True), count
    )
    if not chosen:
        where = f"el lote {batch}" if batch else "la cola"
        return error_response(409, f"no hay tareas terminadas con éxito en {where} para verificar")
    specs = [
        TaskSpec(
            benchmark=t.benchmark,
            params=t.params,
            timeout=t.timeout,
            verify_of=t.id,
            exclude_worker=t.worker,
            threads=t.threads,
        )
        for t in chosen
    ]
    vbatch, ids = state.queue.enqueue(specs, new_batch_id("verify"))
    state.scheduler.wake()
    pairs = [VerifyPair(original=t.id, verify=i) for t, i in zip(chosen, ids, strict=True)]
    return model_response(VerifyStarted(batch=vbatch, pairs=pairs, count=len(pairs)), status_code=201)


def _verify_request(raw: bytes) -> VerifyRequest | Response:
    """The body of ``POST /api/verify``, or the 422 that names what is wrong with it."""
    shape = '{"batch": ..., "count": K}'
    body = _body_json(raw or b"{}", shape)
    if not isinstance(body, dict):
        return error_response(422, f"el cuerpo debe ser un objeto JSON: {shape}")
    try:
        return VerifyRequest.model_validate(body)
    except ValidationError as exc:
        where = {str(e["loc"][0]) for e in exc.errors() if e.get("loc")}
    if "count" in where:
        return error_response(422, f"count debe ser un entero entre 1 y {VERIFY_MAX}")
    if "batch" in where:
        return error_response(422, "batch debe ser el id de un lote (texto)")
    return error_response(422, f"el cuerpo no es válido ({', '.join(sorted(where))}); se espera {shape}")


@router.get("/api/health")
async def health() -> Response:
    return model_response(ServeHealth(version=__version__, final_statuses=list(FINAL_STATUSES)))
