"""The REST API of ``partisim serve``: ``/api/tasks``, ``/api/workers``, ``/api/summary``...

`create_app` wires a `Queue`, a health monitor and a `Scheduler` into a FastAPI app
and runs their lifecycle in its lifespan. Errors are JSON
``{"status": "error", "error": "<mensaje en español>"}``; client mistakes are 4xx.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from partisim import __version__
from partisim.errors import ParamsError
from partisim.orchestrator.queue import FINAL_STATUSES, STATUSES, SUCCESS, Queue, TaskSpec, new_batch_id
from partisim.orchestrator.scheduler import Scheduler
from partisim.orchestrator.tasks import parse_submission

__all__ = ["create_app", "snapshot", "summary", "workers", "error_response", "Notifier", "MAX_WAIT_S"]

log = logging.getLogger(__name__)

#: longest a long-poll request (``?wait=``) is held open
MAX_WAIT_S = 60.0
THROUGHPUT_WINDOW_S = 60.0
#: submissions up to these sizes are handled inline in the event loop
SMALL_BODY_BYTES = 4096
SMALL_SUBMISSION = 64
#: a long-polled summary answers at most this often while tasks keep finishing
SUMMARY_MIN_INTERVAL_S = 0.25


class Notifier:
    """Wakes long-poll requests when tasks finish."""

    def __init__(self) -> None:
        self._tasks: dict[str, list[asyncio.Event]] = {}
        self._changed = asyncio.Event()
        self.closed = False

    def task_finished(self, task_id: str) -> None:
        for event in self._tasks.pop(task_id, ()):
            event.set()
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_task(self, task_id: str, timeout: float) -> None:
        event = asyncio.Event()
        self._tasks.setdefault(task_id, []).append(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            waiting = self._tasks.get(task_id)
            if waiting and event in waiting:
                waiting.remove(event)
                if not waiting:
                    del self._tasks[task_id]

    async def wait_change(self, timeout: float) -> bool:
        """Wait for the next finished task; False if ``timeout`` ran out first."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Release every waiting request (shutdown)."""
        self.closed = True
        for task_id in list(self._tasks):
            self.task_finished(task_id)
        self._changed.set()


def error_response(status_code: int, message: str, field_name: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": "error", "error": message}
    if field_name:
        body["field"] = field_name  # the form field to mark (the dashboard's sweep form)
    return JSONResponse(body, status_code=status_code)


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


# -- views shared with the dashboard --------------------------------------------------


def summary(app: FastAPI, batch: str | None = None) -> dict[str, Any]:
    """Counts per status, throughput of the last minute, active workers."""
    queue: Queue = app.state.queue
    now = time.time()
    counts = queue.counts(batch)
    finished = queue.finished_since(now - THROUGHPUT_WINDOW_S, batch)
    health = app.state.scheduler.health()
    return {
        **counts,
        "batch": batch,
        "finished_last_60s": finished,
        "throughput_per_s": round(finished / THROUGHPUT_WINDOW_S, 3),
        "workers_active": sum(1 for h in health if h.state == "active"),
        "workers_total": len(health),
        "done": counts["queued"] == 0 and counts["running"] == 0,
        "timestamp": now,
    }


def workers(app: FastAPI) -> list[dict[str, Any]]:
    """Each worker's health record, with the scheduler's view of its slots."""
    scheduler: Scheduler = app.state.scheduler
    slots = {s.id: s for s in scheduler.slots()}
    done = app.state.queue.assigned_per_worker()
    out = []
    for h in scheduler.health():
        item = h.to_dict()
        if h.id in slots:
            item.update(slots[h.id].to_dict())
        item["completed"] = done.get(h.id, 0)
        out.append(item)
    return out


def snapshot(app: FastAPI) -> dict[str, Any]:
    """Everything a live view needs in one dict: summary, workers, the 20 newest tasks."""
    return {
        "summary": summary(app),
        "workers": workers(app),
        "recent": [t.to_dict() for t in app.state.queue.list(limit=20)],
    }


# -- the app ---------------------------------------------------------------------------


def create_app(
    queue: Queue,
    monitor: Any,
    scheduler: Scheduler,
    *,
    on_startup: Iterable[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Iterable[Callable[[], Awaitable[None]]] = (),
    shutdown_grace: float = 10.0,
    close_queue: bool = True,
) -> FastAPI:
    """The serve app. Its lifespan starts the monitor and the scheduler (and any extra
    ``on_startup`` hooks, e.g. the inbox) and stops them in reverse order; the queue is
    closed last (in-flight tasks record their outcome while the scheduler stops)."""
    notifier = Notifier()
    scheduler.add_listener(notifier.task_finished)
    startup, shutdown = list(on_startup), list(on_shutdown)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await monitor.start()
        await scheduler.start()
        for hook in startup:
            await hook()
        try:
            yield
        finally:
            notifier.close()
            for hook in reversed(shutdown):
                await hook()
            await scheduler.stop(grace=shutdown_grace)
            await monitor.stop()
            if close_queue:
                queue.close()

    app = FastAPI(
        title="partisim serve",
        version=__version__,
        description="Cola de tareas de partisim: envío, estado, resultados y workers.",
        lifespan=lifespan,
    )
    app.state.queue = queue
    app.state.monitor = monitor
    app.state.scheduler = scheduler
    app.state.notifier = notifier

    @app.exception_handler(ParamsError)
    async def _params_error(request: Request, exc: ParamsError) -> JSONResponse:
        return error_response(422, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = first.get("msg", "valor inválido")
        return error_response(422, f"petición inválida en {where or 'el cuerpo'}: {message}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        text = {404: "ruta no encontrada", 405: "método no permitido"}.get(exc.status_code, str(exc.detail))
        return error_response(exc.status_code, text)

    @app.post("/api/tasks", status_code=201)
    async def submit_tasks(request: Request) -> Any:
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
            batch, ids = queue.enqueue(specs, batch)
        else:
            batch, ids = await run_in_threadpool(queue.enqueue, specs, batch)
        scheduler.wake()
        return JSONResponse({"batch": batch, "ids": ids, "count": len(ids)}, status_code=201)

    @app.get("/api/tasks")
    async def list_tasks(request: Request) -> Any:
        q = request.query_params
        status = _status_filter(q.get("status"))
        tasks = queue.list(status=status, batch=q.get("batch") or None, limit=_limit(q.get("limit")))
        return {"tasks": [t.to_dict() for t in tasks], "count": len(tasks)}

    @app.get("/api/tasks/{task_id}")
    async def get_task(task_id: str, request: Request) -> Any:
        wait = _wait_seconds(request.query_params.get("wait"))
        task = queue.get(task_id)
        if task is None:
            return error_response(404, f"tarea desconocida: {task_id}")
        if wait > 0 and not task.is_final and not notifier.closed:
            await notifier.wait_task(task_id, wait)
            task = queue.get(task_id) or task
        return task.to_dict()

    @app.delete("/api/tasks/{task_id}")
    async def cancel_task(task_id: str) -> Any:
        current = queue.get(task_id)
        if current is None:
            return error_response(404, f"tarea desconocida: {task_id}")
        before = scheduler.cancel(task_id)
        if before is None:
            now = queue.get(task_id) or current
            return error_response(409, f"la tarea {task_id} ya terminó ({now.status}); no se puede cancelar")
        return {"id": task_id, "status": "cancelled", "previous": before.status}

    @app.get("/api/workers")
    async def list_workers() -> Any:
        return {"workers": workers(app)}

    @app.get("/api/summary")
    async def get_summary(request: Request) -> Any:
        batch = request.query_params.get("batch") or None
        wait = _wait_seconds(request.query_params.get("wait"))
        if wait > 0 and queue.has_pending(batch):
            # Long poll: answer when the batch is done, or after a task finished but no
            # more often than every SUMMARY_MIN_INTERVAL_S, or when ``wait`` runs out.
            loop = asyncio.get_running_loop()
            start = loop.time()
            end = start + wait
            changed = False
            while not notifier.closed and (left := end - loop.time()) > 0:
                if changed:
                    left = min(left, start + SUMMARY_MIN_INTERVAL_S - loop.time())
                    if left <= 0:
                        break
                changed = await notifier.wait_change(left) or changed
                if not queue.has_pending(batch):  # asked per finished task: keep it O(1)
                    break
        return summary(app, batch)

    @app.get("/api/batches")
    async def list_batches(request: Request) -> Any:
        return {"batches": queue.batches(limit=_limit(request.query_params.get("limit"), 100))}

    @app.post("/api/verify", status_code=201)
    async def verify(request: Request) -> Any:
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
        done = [t for t in queue.list(status=SUCCESS, batch=batch, limit=100_000) if t.verify_of is None]
        if not done:
            where = f"el lote {batch}" if batch else "la cola"
            return error_response(409, f"no hay tareas terminadas con éxito en {where} para verificar")
        chosen = random.sample(done, min(count, len(done)))
        specs = [
            TaskSpec(benchmark=t.benchmark, params=t.params, timeout=t.timeout,
                     verify_of=t.id, exclude_worker=t.worker)
            for t in chosen
        ]
        vbatch, ids = queue.enqueue(specs, new_batch_id("verify"))
        scheduler.wake()
        pairs = [{"original": t.id, "verify": i} for t, i in zip(chosen, ids, strict=True)]
        return JSONResponse({"batch": vbatch, "pairs": pairs, "count": len(pairs)}, status_code=201)

    @app.get("/api/health")
    async def health() -> Any:
        return {"status": "ok", "version": __version__, "final_statuses": list(FINAL_STATUSES)}

    # --- live dashboard (issue 6) ---------------------------------------------------
    # orchestrator/dashboard.py, when present, exposes `router` serving "/" and
    # "/api/events"; it reads app.state.queue, app.state.monitor and `snapshot(app)`.
    if importlib.util.find_spec("partisim.orchestrator.dashboard") is not None:
        from partisim.orchestrator.dashboard import router as dashboard_router

        app.include_router(dashboard_router)

    return app
