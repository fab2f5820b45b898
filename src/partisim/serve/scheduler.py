"""The scheduler: takes queued tasks in order, hands each to the executor, and applies
the retry policy to what comes back. It never touches SQL (every state change is a
`TaskQueue` method, whose conditional updates make a late or duplicate answer
harmless) and never talks to a worker (that is the executor's job, see `executor`).

Retry policy: connection errors, 5xx and timeouts are retried, preferably elsewhere,
with exponential backoff and jitter, until the task is out of attempts; then it fails
with its last error. A 4xx fails at once, except 429 (busy) and an attempt that never
started, which put the task back without counting the attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from partisim.errors import PartisimError, TaskNotStarted, TaskRejected, TaskTimedOut
from partisim.protocol import ExecuteResult, ForeignResult, MemberView, TaskResult
from partisim.serve.executors.base import Attempt, Executor, Outcome, Placement
from partisim.serve.metrics import ServeMetrics
from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import CANCELLED, Task

__all__ = ["Scheduler", "RetryPolicy", "TICK_S", "WATCHDOG_S"]

log = logging.getLogger(__name__)

#: longest the loop sleeps when nothing wakes it
TICK_S = 0.5
#: how often running tasks nobody follows are checked against their deadline
WATCHDOG_S = 5.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``base * 2**(attempt-1)``, capped, times U(0.5, 1)."""

    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        raw = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        return float(raw * random.uniform(0.5, 1.0))


def _retryable(exc: PartisimError) -> bool:
    """Connection errors, 5xx and timeouts are worth another try; a 4xx is not."""
    return not isinstance(exc, TaskRejected)


def _not_started(exc: PartisimError) -> bool:
    return isinstance(exc, TaskNotStarted) or (isinstance(exc, TaskRejected) and exc.status_code == 429)


class Scheduler:
    """Dispatches queued tasks to an executor and records their outcomes."""

    def __init__(
        self,
        queue: TaskQueue,
        executor: Executor,
        *,
        policy: RetryPolicy | None = None,
        tick: float = TICK_S,
        metrics: ServeMetrics | None = None,
    ) -> None:
        self.queue = queue
        self.executor = executor
        #: what /metrics counts at the transitions this scheduler drives
        self.metrics = metrics or ServeMetrics(executor.kind)
        self.policy = policy or RetryPolicy()
        self.tick = tick
        self._listeners: list[Callable[[str], None]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._last_watchdog = 0.0
        self._results: list[tuple[str, int, TaskResult, str | None, str]] = []
        executor.bind(self._outcome, self.wake, self._extra_run)

    # -- lifecycle ----------------------------------------------------------------

    def add_listener(self, callback: Callable[[str], None]) -> None:
        """``callback(task_id)`` runs (sync, in the event loop) when a task becomes final."""
        self._listeners.append(callback)

    def wake(self) -> None:
        """Ask for a scheduling round now (new tasks, a freed slot, a worker came back)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the executor, resume tasks left running by a previous process, dispatch."""
        self._stopping = False
        await self.executor.start()
        self.reconcile()
        self._loop_task = asyncio.create_task(self._loop(), name="partisim-scheduler")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop dispatching; in-flight attempts get ``grace`` seconds, then stay running in
        the queue (the next ``serve`` resumes them)."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        await self.executor.stop(grace)
        self._record_results()  # what arrived during the stop

    def members(self) -> list[MemberView]:
        return self.executor.members()

    # -- dispatch -------------------------------------------------------------------

    def _schedule_round(self) -> None:
        self.executor.round_start()
        free = self.executor.free_slots()
        # Read only as many queued tasks as there are free slots; read further pages only
        # when some could not be placed (a verification run waiting for another worker, a
        # task of several threads waiting for enough free slots). A task takes its
        # placement's slots (its threads); when one cannot be placed the executor may have
        # held slots back for it, which are then no longer free for the tasks behind it.
        offset = 0
        while free > 0:
            size = free + 2
            page = self.queue.ready(limit=size, offset=offset)
            placed: list[tuple[Task, Placement]] = []
            skipped = 0
            for task in page:
                if free <= 0:
                    break
                placement = self.executor.place(task)
                if placement is None:
                    reason = self.executor.unplaceable(task)
                    if reason is not None:  # no member could ever run it: fail now, not wait forever
                        if self.queue.fail_queued(task.id, reason):
                            log.warning("tarea %s fallida: %s", task.id, reason)
                            self._notify(task.id)
                        continue
                    skipped += 1
                    free = min(free, self.executor.free_slots())
                    continue
                free -= placement.takes
                placed.append((task, placement))
            # Claim the whole page in one transaction: one commit per round, not per task.
            now = time.time()
            deadlines = [now + self.executor.bound(task) for task, _ in placed]
            numbers = self.queue.claim_many(
                [
                    (task.id, p.member, p.address, deadline)
                    for (task, p), deadline in zip(placed, deadlines, strict=True)
                ]
            )
            for (task, placement), deadline, number in zip(placed, deadlines, numbers, strict=True):
                if number is None:  # cancelled meanwhile: no longer queued; give the slots back
                    self.executor.unplace(placement)
                    free += placement.takes
                    continue
                self.metrics.launched(task.id, number, ready_at=max(task.created_at, task.not_before), now=now)
                self.executor.launch(Attempt(task, number, placement, deadline))
            if len(page) < size:
                break  # nothing more is ready
            offset += skipped  # the skipped ones stay queued ahead of the next page

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

    # -- outcomes -------------------------------------------------------------------

    def _outcome(self, attempt: Attempt, outcome: Outcome, worker: str | None) -> None:
        if isinstance(outcome, (ExecuteResult, ForeignResult)):
            self.metrics.answered(attempt.task_id, attempt.number, ok=True)
            self._succeeded(attempt, outcome, worker)
        else:
            self.metrics.answered(attempt.task_id, attempt.number, ok=False)
            self._failed_attempt(attempt.task, worker or attempt.placement.member, attempt.number, outcome, worker)

    def _succeeded(self, attempt: Attempt, result: TaskResult, worker: str | None) -> None:
        # Results that arrive together (an executor may hand over many in one tick) are
        # recorded together, in one transaction, at the end of the tick.
        self._results.append((attempt.task_id, attempt.number, result, worker, attempt.placement.member))
        if len(self._results) > 1:
            return
        try:
            asyncio.get_running_loop().call_soon(self._record_results)
        except RuntimeError:  # no event loop (a direct call): record now
            self._record_results()

    def _record_results(self) -> None:
        batch, self._results = self._results, []
        recorded = self.queue.complete_many(
            [(task_id, number, result, worker) for task_id, number, result, worker, _ in batch]
        )
        for (task_id, _, _, worker, member), ok in zip(batch, recorded, strict=True):
            if ok:
                self._notify(task_id)
                continue
            log.info("resultado de %s ignorado (la tarea ya no esperaba este intento)", task_id)
            current = self.queue.get(task_id)
            if current is not None and current.status != CANCELLED:
                # the task ran there all the same: a second run, if another one is recorded
                self._extra_run(task_id, worker or member)

    def _extra_run(self, task_id: str, member: str) -> None:
        """``member`` ran ``task_id`` to the end, but serve no longer waited for that run."""
        task = self.queue.note_run(task_id, member)
        if task is not None and task.duplicates:
            log.warning(
                "tarea %s: %s también la ejecutó (ejecuciones duplicadas: %d)", task_id, member, task.duplicates
            )

    def _failed_attempt(
        self, task: Task, member: str, number: int, exc: PartisimError, worker: str | None = None
    ) -> None:
        message = str(exc) or "error sin descripción"
        if _not_started(exc):
            self.metrics.attempt_error(exc, "release")
            self.queue.release(task.id, number, time.time() + self.policy.delay(1))
            return
        retryable = _retryable(exc)
        if retryable and number < task.max_attempts:
            delay = self.policy.delay(number)
            log.info(
                "tarea %s: intento %d en %s falló (%s); reintento en %.2f s", task.id, number, member, message, delay
            )
            self.metrics.attempt_error(exc, "retry")
            self.queue.retry(task.id, number, message, time.time() + delay, worker)
            return
        if retryable:
            message = f"sin intentos ({number}/{task.max_attempts}); último error: {message}"
        if self.queue.fail(task.id, number, message, worker):
            self.metrics.attempt_error(exc, "fail")
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
        """Cancel a task; if it was running, the executor stops it too."""
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
        self.metrics.forget(task_id)
        self._notify(task_id)
        if before.status == "running":
            self.executor.cancel(task_id, before.worker, before.worker_url)
        self.wake()
        return before

    # -- recovery -----------------------------------------------------------------

    def reconcile(self) -> None:
        """Tasks the database says are running but nobody here follows (a previous
        ``serve`` was killed): the executor follows them to the end, or they go back."""
        for task in self.queue.running():
            if self.executor.running(task.id):
                continue
            if not self.executor.resume(task):
                log.info("tarea %s de una ejecución anterior: vuelve a la cola", task.id)
                self.queue.release(task.id, task.attempts, time.time())

    def _watchdog(self) -> None:
        """Running tasks nobody follows whose deadline passed (should not happen; cheap)."""
        now = time.time()
        if now - self._last_watchdog < WATCHDOG_S:
            return
        self._last_watchdog = now
        for task in self.queue.running():
            if not self.executor.running(task.id) and task.deadline is not None and task.deadline < now:
                self._failed_attempt(
                    task,
                    task.worker or "?",
                    task.attempts,
                    TaskTimedOut(f"la tarea {task.id} superó su plazo sin respuesta"),
                )
