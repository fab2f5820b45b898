"""The scheduler: decides where each queued task goes, dispatches it, and applies the
retry policy to what comes back. It never touches SQL: every state change is a
`Queue` method, whose conditional updates make a late or duplicate answer harmless.

Placement: among the active workers, the one with the most free slots, where a
worker's slots are ``min(capacity reported by its /status, max_concurrent_tasks)``
and the used ones are the tasks this scheduler has in flight there (ties go to the
worker that was given the fewest tasks, so equal workers share the work evenly).

Retry policy: connection errors, 5xx and timeouts are retried on another worker,
with exponential backoff and jitter, until the task is out of attempts; then it
fails with its last error. A 4xx fails at once, except 429 (busy), which puts the
task back without counting the attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from partisim.errors import (
    PartisimError,
    TaskRejected,
    TaskTimedOut,
    WorkerFailed,
    WorkerUnavailable,
)
from partisim.orchestrator.client import AsyncWorkerClient
from partisim.orchestrator.queue import Queue, Task

__all__ = ["Scheduler", "RetryPolicy", "WorkerSlots"]

log = logging.getLogger(__name__)

#: worker-side task states (GET /tasks/{id}) that mean "still going"
_PENDING = {"queued", "running", "pending", "accepted"}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``base * 2**(attempt-1)``, capped, times U(0.5, 1)."""

    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        raw = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        return raw * random.uniform(0.5, 1.0)


@dataclass
class WorkerSlots:
    id: str
    url: str
    state: str
    limit: int
    inflight: int
    dispatched: int
    suspended: bool

    @property
    def free(self) -> int:
        return max(0, self.limit - self.inflight) if self.dispatchable else 0

    @property
    def dispatchable(self) -> bool:
        return self.state == "active" and not self.suspended

    def to_dict(self) -> dict[str, Any]:
        return {
            "capacity": self.limit,
            "inflight": self.inflight,
            "free": self.free,
            "dispatched": self.dispatched,
            "suspended": self.suspended,
        }


class Scheduler:
    """Dispatches queued tasks to the workers of a health monitor."""

    def __init__(
        self,
        queue: Queue,
        monitor: Any,
        *,
        max_concurrent_tasks: int = 4,
        request_timeout: float = 5.0,
        default_task_timeout: float = 600.0,
        policy: RetryPolicy | None = None,
        token: str | None = None,
        tick: float = 0.5,
        follow_interval: float = 0.25,
    ) -> None:
        self.queue = queue
        self.monitor = monitor
        self.max_concurrent_tasks = max(1, int(max_concurrent_tasks))
        self.request_timeout = request_timeout
        self.default_task_timeout = default_task_timeout
        self.policy = policy or RetryPolicy()
        self.token = token
        self.tick = tick
        self.follow_interval = follow_interval
        self._clients: dict[str, AsyncWorkerClient] = {}
        self._inflight: dict[str, int] = defaultdict(int)
        self._dispatched: dict[str, int] = defaultdict(int)
        self._suspended: dict[str, float] = {}  # worker id -> when it last failed to connect
        self._active: dict[str, asyncio.Task[None]] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._last_watchdog = 0.0
        self._health: list[Any] | None = None
        self._health_rounds: int | None = None

    # -- lifecycle ----------------------------------------------------------------

    def add_listener(self, callback: Callable[[str], None]) -> None:
        """``callback(task_id)`` runs (sync, in the event loop) when a task becomes final."""
        self._listeners.append(callback)

    def wake(self) -> None:
        """Ask for a scheduling round now (new tasks, a freed slot, a worker came back)."""
        self._wake.set()

    async def start(self) -> None:
        """Reconcile tasks left running by a previous process, then start dispatching."""
        self._stopping = False
        await self.reconcile()
        self._loop_task = asyncio.create_task(self._loop(), name="partisim-scheduler")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop dispatching; give in-flight tasks ``grace`` seconds, then leave them running
        in the queue (the next ``serve`` reconciles them with their workers)."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        pending = list(self._active.values())
        if pending:
            log.info("esperando %d tareas en curso (hasta %.0f s)", len(pending), grace)
            done, still = await asyncio.wait(pending, timeout=grace)
            for t in still:
                t.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    # -- placement ----------------------------------------------------------------

    def health(self) -> list[Any]:
        """The monitor's records, copied once per health round (copies are not free)."""
        rounds = getattr(self.monitor, "rounds", None)
        if rounds is None or rounds != self._health_rounds or self._health is None:
            self._health = self.monitor.snapshot()
            self._health_rounds = rounds
        return self._health

    def slots(self) -> list[WorkerSlots]:
        """Per-worker view: limit, tasks in flight, free slots."""
        out = []
        for h in self.health():
            suspended_at = self._suspended.get(h.id)
            if suspended_at is not None and (h.last_seen or 0.0) > suspended_at:
                # answered a ping after the failure: usable again
                self._suspended.pop(h.id, None)
                suspended_at = None
            out.append(WorkerSlots(
                id=h.id, url=h.url, state=h.state, limit=self._limit(h),
                inflight=self._inflight[h.id], dispatched=self._dispatched[h.id],
                suspended=suspended_at is not None,
            ))
        return out

    def _limit(self, health: Any) -> int:
        status = health.last_status or {}
        capacity = status.get("capacity")
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            capacity = 1  # unknown: be careful until /status answers
        return min(capacity, self.max_concurrent_tasks)

    def _pick(self, task: Task, slots: list[WorkerSlots]) -> WorkerSlots | None:
        free = [s for s in slots if s.free > 0]
        if task.exclude_worker is not None and len(slots) > 1:
            # a verification run must come from a different machine
            free = [s for s in free if s.id != task.exclude_worker]
        if task.avoid_worker is not None:
            others_alive = any(s.dispatchable and s.id != task.avoid_worker for s in slots)
            if others_alive:
                free = [s for s in free if s.id != task.avoid_worker]
        if not free:
            return None
        return max(free, key=lambda s: (s.free, -s.dispatched))

    def _schedule_round(self) -> None:
        slots = self.slots()
        total_free = sum(s.free for s in slots)
        if total_free == 0:
            return
        # Read only as many queued tasks as there are free slots; read further pages only
        # when some could not be placed (a verification run waiting for another worker).
        offset = 0
        while total_free > 0:
            size = total_free + 2
            page = self.queue.ready(limit=size, offset=offset)
            skipped = 0
            placed: list[tuple[Task, WorkerSlots]] = []
            for task in page:
                if total_free == 0:
                    break
                target = self._pick(task, slots)
                if target is None:
                    skipped += 1
                    continue
                target.inflight += 1
                target.dispatched += 1
                total_free -= 1
                placed.append((task, target))
            # Claim the whole page in one transaction: one commit per round, not per task.
            now = time.time()
            attempts = self.queue.claim_many([
                (task.id, target.id, target.url, now + self._bound(task)) for task, target in placed
            ])
            for (task, target), attempt in zip(placed, attempts, strict=True):
                if attempt is None:  # cancelled meanwhile: no longer queued; free the slot
                    target.inflight -= 1
                    target.dispatched -= 1
                    total_free += 1
                    continue
                self._start(task.id, target.id, self._dispatch(task, target.id, target.url, attempt))
            if len(page) < size:
                break  # nothing more is ready
            offset += skipped  # the skipped ones stay queued ahead of the next page

    def _start(self, task_id: str, worker_id: str, coro: Any) -> None:
        self._inflight[worker_id] += 1
        self._dispatched[worker_id] += 1
        job = asyncio.create_task(coro, name=f"partisim-task-{task_id}")
        self._active[task_id] = job

        def done(_: asyncio.Task[None]) -> None:
            self._inflight[worker_id] -= 1
            if self._active.get(task_id) is job:
                del self._active[task_id]
            self._wake.set()

        job.add_done_callback(done)

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            round_at = time.time()
            try:
                self._schedule_round()
                self._watchdog()
            except Exception:  # one bad round must not stop the service
                log.exception("ronda del planificador fallida")
            delay = self.tick
            # Only a backoff that ends later shortens the wait: tasks already ready but not
            # placed (every slot busy) wait for a freed slot's wake(), not a busy loop.
            next_at = self.queue.next_ready_at(after=round_at)
            if next_at is not None:
                delay = max(0.0, min(delay, next_at - time.time()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.005))
            except asyncio.TimeoutError:
                pass

    # -- dispatch and outcomes ----------------------------------------------------

    def _client(self, url: str) -> AsyncWorkerClient:
        client = self._clients.get(url)
        if client is None:
            client = AsyncWorkerClient(url, timeout=self.request_timeout, token=self.token)
            self._clients[url] = client
        return client

    def _bound(self, task: Task) -> float:
        """Longest we wait for a dispatched task's answer (its deadline, from dispatch)."""
        # Without its own timeout a task gets the worker's default; our own bound then
        # only guards against a worker that never answers.
        return (task.timeout or self.default_task_timeout) + self.request_timeout + 10.0

    async def _dispatch(self, task: Task, worker_id: str, url: str, attempt: int) -> None:
        bound = self._bound(task)
        try:
            answer = await asyncio.wait_for(
                self._client(url).execute(task.benchmark, task.params, task_id=task.id, timeout=task.timeout),
                timeout=bound,
            )
        except asyncio.TimeoutError:
            self._failed_attempt(task, worker_id, attempt,
                                 TaskTimedOut(f"{url}: sin respuesta en {bound:.0f} s"))
            return
        except PartisimError as exc:
            self._failed_attempt(task, worker_id, attempt, exc)
            return
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise  # shutdown: the task stays running; the next start reconciles it
        except Exception as exc:  # an answer we could not use: count it as a worker fault
            log.exception("respuesta inesperada de %s para %s", worker_id, task.id)
            self._failed_attempt(task, worker_id, attempt, WorkerFailed(f"{url}: {exc}"))
            return
        self._succeeded(task, worker_id, attempt, answer)

    def _succeeded(self, task: Task, worker_id: str, attempt: int, answer: dict[str, Any]) -> None:
        if answer.get("status", "success") != "success" or "checksum" not in answer:
            self._failed_attempt(
                task, worker_id, attempt,
                WorkerFailed(f"respuesta incompleta de {worker_id}: {str(answer)[:200]}"),
            )
            return
        if self.queue.complete(task.id, attempt, answer):
            self._notify(task.id)
        else:
            log.info("resultado de %s ignorado (la tarea ya no esperaba este intento)", task.id)

    def _failed_attempt(self, task: Task, worker_id: str, attempt: int, exc: Exception) -> None:
        message = str(exc) or type(exc).__name__
        if isinstance(exc, TaskRejected) and exc.status_code == 429:
            self.queue.release(task.id, attempt, time.time() + self.policy.delay(1))
            return
        if isinstance(exc, WorkerUnavailable):
            self._suspended[worker_id] = time.time()
            record = getattr(getattr(self.monitor, "registry", None), "record_failure", None)
            if record is not None:
                record(worker_id, message)
                self._health = None  # the record changed: copy it again
        # connection errors, 5xx and timeouts are worth another try; a 4xx is not
        retryable = not isinstance(exc, TaskRejected)
        if retryable and attempt < task.max_attempts:
            delay = self.policy.delay(attempt)
            log.info("tarea %s: intento %d en %s falló (%s); reintento en %.2f s",
                     task.id, attempt, worker_id, message, delay)
            self.queue.retry(task.id, attempt, message, time.time() + delay)
            return
        if retryable:
            message = f"sin intentos ({attempt}/{task.max_attempts}); último error: {message}"
        if self.queue.fail(task.id, attempt, message):
            log.warning("tarea %s fallida: %s", task.id, message)
            self._notify(task.id)

    def _notify(self, task_id: str) -> None:
        for callback in self._listeners:
            try:
                callback(task_id)
            except Exception:
                log.exception("listener falló para %s", task_id)

    # -- cancel -------------------------------------------------------------------

    def cancel(self, task_id: str) -> Task | None:
        """Cancel a task; if it was running, ask its worker to stop it too."""
        before = None
        for _ in range(3):  # a task may move between read and update; try again
            before = self.queue.cancel(task_id)
            if before is not None:
                break
            current = self.queue.get(task_id)
            if current is None or current.is_final:
                return None
        if before is None:
            return None
        self._notify(task_id)
        if before.status == "running":
            if before.worker_url:
                asyncio.get_running_loop().create_task(self._cancel_remote(before.worker_url, task_id))
            # Stop waiting for its answer now: the slot is free at once, even when the
            # worker hangs and never answers the DELETE (its answer would be dropped anyway).
            job = self._active.get(task_id)
            if job is not None:
                job.cancel()
        self.wake()
        return before

    async def _cancel_remote(self, url: str, task_id: str) -> None:
        try:
            await self._client(url).cancel_task(task_id)
        except PartisimError as exc:
            log.info("no se pudo cancelar %s en %s: %s", task_id, url, exc)

    # -- recovery -----------------------------------------------------------------

    async def reconcile(self) -> None:
        """Tasks the database says are running but no coroutine here follows (a previous
        ``serve`` was killed): ask their worker by task_id and follow them to the end."""
        for task in self.queue.running():
            if task.id in self._active or task.worker is None or task.worker_url is None:
                if task.worker is None:
                    self.queue.release(task.id, task.attempts, time.time())
                continue
            self._start(task.id, task.worker, self._follow(task))

    async def _follow(self, task: Task) -> None:
        worker_id, url, attempt = task.worker or "", task.worker_url or "", task.attempts
        deadline = task.deadline or (time.time() + self.default_task_timeout)
        client = self._client(url)
        while True:
            try:
                state = await client.get_task(task.id)
            except TaskRejected as exc:
                if exc.status_code == 404:  # never reached the worker: put it back
                    log.info("tarea %s desconocida en %s: vuelve a la cola", task.id, worker_id)
                    self.queue.release(task.id, attempt, time.time())
                    return
                self._failed_attempt(task, worker_id, attempt, exc)
                return
            except PartisimError as exc:
                self._failed_attempt(task, worker_id, attempt, exc)
                return
            status = str(state.get("status", ""))
            if status not in _PENDING:
                break
            if time.time() > deadline:
                self._failed_attempt(task, worker_id, attempt,
                                     TaskTimedOut(f"{url}: la tarea {task.id} superó su plazo"))
                return
            await asyncio.sleep(self.follow_interval)
        result = state.get("result") if isinstance(state.get("result"), dict) else state
        if status == "success":
            self._succeeded(task, worker_id, attempt, {**result, "status": "success"})
            return
        error = str(state.get("error") or result.get("error") or f"estado {status} en {worker_id}")
        code = state.get("status_code") or result.get("status_code")
        if isinstance(code, int) and 400 <= code < 500 and code != 429:
            self._failed_attempt(task, worker_id, attempt, TaskRejected(error, code))
        elif status == "timeout":
            self._failed_attempt(task, worker_id, attempt, TaskTimedOut(error))
        else:
            self._failed_attempt(task, worker_id, attempt, WorkerFailed(error))

    def _watchdog(self) -> None:
        """Running tasks nobody follows whose deadline passed (should not happen; cheap)."""
        now = time.time()
        if now - self._last_watchdog < 5.0:
            return
        self._last_watchdog = now
        for task in self.queue.running():
            if task.id not in self._active and task.deadline is not None and task.deadline < now:
                self._failed_attempt(task, task.worker or "?", task.attempts,
                                     TaskTimedOut(f"la tarea {task.id} superó su plazo sin respuesta"))
