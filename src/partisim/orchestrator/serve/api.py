"""The REST API of ``partisim serve``: ``/api/tasks``, ``/api/workers``, ``/api/summary``,
``/api/batches``, ``/api/verify``, ``/api/health``.

Routes parse, call the queue and the scheduler, and answer models of
`partisim.protocol`; errors are ``{"status": "error", "error": "<mensaje>"}`` (client
mistakes are 4xx). The app that holds this router is assembled in `serve.app`.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from partisim import __version__
from partisim.errors import ParamsError
from partisim.orchestrator.advice import queued_without_workers
from partisim.orchestrator.serve.responses import error_response, model_response
from partisim.orchestrator.serve.specs import parse_submission
from partisim.orchestrator.serve.state import state_of, summary, workers
from partisim.orchestrator.serve.taskqueue import FINAL_STATUSES, STATUSES, SUCCESS, TaskSpec, new_batch_id
from partisim.protocol import Submitted, TaskList, WorkerList

__all__ = ["router", "MAX_WAIT_S"]

#: longest a long-poll request (``?wait=``) is held open
MAX_WAIT_S = 60.0
#: submissions up to these sizes are handled inline in the event loop
SMALL_BODY_BYTES = 4096
SMALL_SUBMISSION = 64
#: a long-polled summary answers at most this often while tasks keep finishing
SUMMARY_MIN_INTERVAL_S = 0.25

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
        value = int(raw)
    except ValueError:
        raise ParamsError(f"limit debe ser un número entero (recibido {raw!r})", field="limit") from None
    if not 1 <= value <= 100_000:
        raise ParamsError("limit debe estar entre 1 y 100000", field="limit")
    return value


def _status_filter(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in STATUSES:
        raise ParamsError(f"status desconocido {raw!r}; válidos: {', '.join(STATUSES)}", field="status")
    return raw


@router.post("/api/tasks", status_code=201)
async def submit_tasks(request: Request) -> Response:
    state = state_of(request)
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return error_response(422, "el cuerpo debe ser JSON: una tarea, una lista o {\"tasks\": [...]}")
    # A few tasks are cheaper to handle here than through a thread hop; thousands are
    # validated and inserted in a thread so the event loop keeps dispatching.
    if len(raw) <= SMALL_BODY_BYTES:
        specs, batch = parse_submission(body)
    else:
        specs, batch = await run_in_threadpool(parse_submission, body)
    if len(specs) <= SMALL_SUBMISSION:
        batch, ids = state.queue.enqueue(specs, batch)
    else:
        batch, ids = await run_in_threadpool(state.queue.enqueue, specs, batch)
    state.scheduler.wake()
    warning = queued_without_workers(len(ids)) if state.executor.active_members() == 0 else None
    return model_response(Submitted(batch=str(batch), ids=ids, count=len(ids), warning=warning), 201)


@router.get("/api/tasks")
async def list_tasks(request: Request) -> Response:
    q = request.query_params
    status = _status_filter(q.get("status"))
    tasks = state_of(request).queue.tasks(status=status, batch=q.get("batch") or None, limit=_limit(q.get("limit")))
    return model_response(TaskList(tasks=[t.view() for t in tasks], count=len(tasks)))


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
async def cancel_task(task_id: str, request: Request) -> Any:
    state = state_of(request)
    current = state.queue.get(task_id)
    if current is None:
        return error_response(404, f"tarea desconocida: {task_id}")
    before = state.scheduler.cancel(task_id)
    if before is None:
        now = state.queue.get(task_id) or current
        return error_response(409, f"la tarea {task_id} ya terminó ({now.status}); no se puede cancelar")
    return {"id": task_id, "status": "cancelled", "previous": before.status}


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
async def list_batches(request: Request) -> Any:
    batches = state_of(request).queue.batches(limit=_limit(request.query_params.get("limit"), 100))
    return {"batches": [b.model_dump(mode="json") for b in batches]}


@router.post("/api/verify", status_code=201)
async def verify(request: Request) -> Any:
    state = state_of(request)
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return error_response(422, "el cuerpo debe ser JSON: {\"batch\": ..., \"count\": K}")
    if not isinstance(body, dict):
        return error_response(422, "el cuerpo debe ser un objeto JSON: {\"batch\": ..., \"count\": K}")
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
        return error_response(422, "count debe ser un entero entre 1 y 1000")
    batch = body.get("batch")
    done = [t for t in state.queue.tasks(status=SUCCESS, batch=batch, limit=100_000) if t.verify_of is None]
    if not done:
        where = f"el lote {batch}" if batch else "la cola"
        return error_response(409, f"no hay tareas terminadas con éxito en {where} para verificar")
    chosen = random.sample(done, min(count, len(done)))
    specs = [
        TaskSpec(benchmark=t.benchmark, params=t.params, timeout=t.timeout, verify_of=t.id, exclude_worker=t.worker,
                 threads=t.threads)
        for t in chosen
    ]
    vbatch, ids = state.queue.enqueue(specs, new_batch_id("verify"))
    state.scheduler.wake()
    pairs = [{"original": t.id, "verify": i} for t, i in zip(chosen, ids, strict=True)]
    return Response(json.dumps({"batch": vbatch, "pairs": pairs, "count": len(pairs)}), status_code=201,
                    media_type="application/json")


@router.get("/api/health")
async def health() -> Any:
    return {"status": "ok", "version": __version__, "final_statuses": list(FINAL_STATUSES)}
