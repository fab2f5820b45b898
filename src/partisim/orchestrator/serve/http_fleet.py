"""The HTTP worker fleet as an executor: the workers of config_workers.json.

Members are the configured workers, watched by a `HealthMonitor`. A worker's slots are
``min(capacity reported by its /status, max_concurrent_tasks)``, and the used ones are
the attempts in flight there. Placement: among the active workers, the one with the
most free slots (ties go to the worker given the fewest tasks, so equal workers share
the work evenly); a verification run never goes to the worker of its original, and a
retry avoids the worker that failed it while another one is alive.

An attempt is one ``POST /execute`` carrying the task id, so a retry after a lost
answer is recognised by the worker and never counted twice. A worker that refuses a
connection is suspended until it answers a ping again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from partisim.errors import PartisimError, TaskNotStarted, TaskRejected, TaskTimedOut, WorkerFailed, WorkerUnavailable
from partisim.fleet import OrchestratorSettings
from partisim.orchestrator.client import AsyncWorkerClient
from partisim.orchestrator.registry import HealthMonitor, WorkerHealth
from partisim.orchestrator.serve.executor import Attempt, Executor, Placement
from partisim.orchestrator.serve.taskqueue import Task
from partisim.protocol import ExecuteRequest, MemberView, TaskState

__all__ = ["HttpFleet", "FOLLOW_INTERVAL_S", "ANSWER_MARGIN_S"]

log = logging.getLogger(__name__)

#: how often a task left running by a previous serve is asked about
FOLLOW_INTERVAL_S = 0.25
#: waited for an answer beyond a task's own timeout and the request timeout
ANSWER_MARGIN_S = 10.0


class HttpFleet(Executor):
    kind = "http"

    def __init__(self, monitor: HealthMonitor, settings: OrchestratorSettings, *, token: str | None = None,
                 default_task_timeout: float = 600.0, follow_interval: float = FOLLOW_INTERVAL_S) -> None:
        super().__init__()
        self.monitor = monitor
        self.settings = settings
        self.token = token
        self.default_task_timeout = default_task_timeout
        self.follow_interval = follow_interval
        self._clients: dict[str, AsyncWorkerClient] = {}
        self._inflight: dict[str, int] = defaultdict(int)
        self._dispatched: dict[str, int] = defaultdict(int)
        self._suspended: dict[str, float] = {}  # worker id -> when it last failed to connect
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._health: list[WorkerHealth] | None = None
        self._health_rounds = -1

    # -- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        await self.monitor.start()

    async def stop(self, grace: float) -> None:
        pending = list(self._jobs.values())
        if pending:
            log.info("esperando %d tareas en curso (hasta %.0f s)", len(pending), grace)
            _, still = await asyncio.wait(pending, timeout=grace)
            for job in still:
                job.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        await self.monitor.stop()

    # -- members --------------------------------------------------------------------

    def health(self) -> list[WorkerHealth]:
        """The monitor's records, copied once per health round (copies are not free)."""
        if self._health is None or self.monitor.rounds != self._health_rounds:
            self._health = self.monitor.snapshot()
            self._health_rounds = self.monitor.rounds
        return self._health

    def _limit(self, h: WorkerHealth) -> int:
        # unknown capacity: be careful (one slot) until /status answers
        capacity = h.last_status.capacity if h.last_status is not None else 1
        return max(1, min(capacity, self.settings.max_concurrent_tasks))

    def _suspended_now(self, h: WorkerHealth) -> bool:
        at = self._suspended.get(h.id)
        if at is not None and (h.last_seen or 0.0) > at:
            del self._suspended[h.id]  # answered a ping after the failure: usable again
            return False
        return at is not None

    def _free(self, h: WorkerHealth) -> int:
        if h.state != "active" or self._suspended_now(h):
            return 0
        return max(0, self._limit(h) - self._inflight[h.id])

    def members(self) -> list[MemberView]:
        out = []
        for h in self.health():
            out.append(MemberView(
                id=h.id, kind="http", url=h.url, address=h.address, state=h.state, since=h.since,
                latency_ms=h.latency_ms, reported_id=h.reported_id, consecutive_failures=h.consecutive_failures,
                last_status=h.last_status, last_error=h.last_error, last_seen=h.last_seen, checked_at=h.checked_at,
                capacity=self._limit(h), inflight=self._inflight[h.id], free=self._free(h),
                dispatched=self._dispatched[h.id], suspended=self._suspended_now(h),
            ))
        return out

    def free_slots(self) -> int:
        return sum(self._free(h) for h in self.health())

    # -- placement ------------------------------------------------------------------

    def bound(self, task: Task) -> float:
        # Without its own timeout a task gets the worker's default; our own bound then
        # only guards against a worker that never answers.
        return (task.timeout or self.default_task_timeout) + self.settings.timeout + ANSWER_MARGIN_S

    def place(self, task: Task) -> Placement | None:
        healths = self.health()
        free = [h for h in healths if self._free(h) > 0]
        if task.exclude_worker is not None and len(healths) > 1:
            # a verification run must come from a different machine
            free = [h for h in free if h.id != task.exclude_worker]
        if task.avoid_worker is not None:
            others_alive = any(h.id != task.avoid_worker and h.state == "active" and not self._suspended_now(h)
                               for h in healths)
            if others_alive:
                free = [h for h in free if h.id != task.avoid_worker]
        if not free:
            return None
        best = max(free, key=lambda h: (self._free(h), -self._dispatched[h.id]))
        self._inflight[best.id] += 1
        self._dispatched[best.id] += 1
        return Placement(best.id, best.url)

    def unplace(self, placement: Placement) -> None:
        self._inflight[placement.member] -= 1
        self._dispatched[placement.member] -= 1

    # -- attempts -------------------------------------------------------------------

    def _client(self, url: str) -> AsyncWorkerClient:
        client = self._clients.get(url)
        if client is None:
            client = AsyncWorkerClient(url, timeout=self.settings.timeout, token=self.token)
            self._clients[url] = client
        return client

    def _track(self, attempt: Attempt, job: asyncio.Task[None]) -> None:
        """Free the slot when the job ends, however it ends."""
        task_id, member = attempt.task_id, attempt.placement.member
        self._jobs[task_id] = job

        def done(_: asyncio.Task[None]) -> None:
            self._inflight[member] -= 1
            if self._jobs.get(task_id) is job:
                del self._jobs[task_id]
            self._wake()

        job.add_done_callback(done)

    def launch(self, attempt: Attempt) -> None:
        job = asyncio.get_running_loop().create_task(self._execute(attempt), name=f"partisim-task-{attempt.task_id}")
        self._track(attempt, job)

    def running(self, task_id: str) -> bool:
        return task_id in self._jobs

    def _failed(self, attempt: Attempt, exc: PartisimError) -> None:
        if isinstance(exc, WorkerUnavailable):
            self._suspended[attempt.placement.member] = time.time()
            self.monitor.registry.record_failure(attempt.placement.member, str(exc))
            self._health = None  # the record changed: copy it again
        self.deliver(attempt, exc)

    async def _execute(self, attempt: Attempt) -> None:
        task, url = attempt.task, attempt.placement.address
        request = ExecuteRequest(benchmark=task.benchmark, params=task.params, task_id=task.id, timeout=task.timeout)
        bound = max(0.0, attempt.deadline - time.time())
        try:
            result = await asyncio.wait_for(self._client(url).execute(request), timeout=bound)
        except asyncio.TimeoutError:
            self._failed(attempt, TaskTimedOut(f"{url}: sin respuesta en {bound:.0f} s"))
        except PartisimError as exc:
            self._failed(attempt, exc)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise  # shutdown or cancel: no outcome; the queue keeps the task's state
        except Exception as exc:  # an answer we could not use: count it as a worker fault
            log.exception("respuesta inesperada de %s para %s", attempt.placement.member, task.id)
            self._failed(attempt, WorkerFailed(f"{url}: {exc}"))
        else:
            self.deliver(attempt, result)

    def cancel(self, task_id: str, member: str | None, address: str | None) -> None:
        if address:
            asyncio.get_running_loop().create_task(self._cancel_remote(address, task_id))
        # Stop waiting for its answer now: the slot is free at once, even when the
        # worker hangs and never answers the DELETE (its answer would be dropped anyway).
        job = self._jobs.get(task_id)
        if job is not None:
            job.cancel()

    async def _cancel_remote(self, url: str, task_id: str) -> None:
        try:
            await self._client(url).cancel_task(task_id)
        except PartisimError as exc:
            log.info("no se pudo cancelar %s en %s: %s", task_id, url, exc)

    # -- recovery -------------------------------------------------------------------

    def resume(self, task: Task) -> bool:
        if task.worker is None or task.worker_url is None:
            return False
        placement = Placement(task.worker, task.worker_url)
        deadline = task.deadline or (time.time() + self.default_task_timeout)
        attempt = Attempt(task, task.attempts, placement, deadline)
        self._inflight[placement.member] += 1
        self._dispatched[placement.member] += 1
        job = asyncio.get_running_loop().create_task(self._follow(attempt), name=f"partisim-follow-{task.id}")
        self._track(attempt, job)
        return True

    async def _follow(self, attempt: Attempt) -> None:
        """Ask the worker about the task by id until it is final, then deliver its outcome."""
        task, url = attempt.task, attempt.placement.address
        client = self._client(url)
        while True:
            try:
                state = await client.get_task(task.id)
            except TaskRejected as exc:
                if exc.status_code == 404:  # never reached the worker: it was not attempted there
                    self.deliver(attempt, TaskNotStarted(f"la tarea {task.id} no llegó a {attempt.placement.member}"))
                    return
                self._failed(attempt, exc)
                return
            except PartisimError as exc:
                self._failed(attempt, exc)
                return
            if not state.pending:
                break
            if time.time() > attempt.deadline:
                self._failed(attempt, TaskTimedOut(f"{url}: la tarea {task.id} superó su plazo"))
                return
            await asyncio.sleep(self.follow_interval)
        self._settle(attempt, state)

    def _settle(self, attempt: Attempt, state: TaskState) -> None:
        """A final worker record -> the outcome; ``code`` is the HTTP code of its failure."""
        if state.status == "success" and state.result is not None:
            self.deliver(attempt, state.result)
            return
        error = state.error or f"estado {state.status} en {attempt.placement.member}"
        code = state.code
        if code is not None and 400 <= code < 500 and code != 429:
            self._failed(attempt, TaskRejected(error, code))
        elif state.status == "timeout":
            self._failed(attempt, TaskTimedOut(error, code))
        else:
            self._failed(attempt, WorkerFailed(error, code))

    # -- for serve's log ------------------------------------------------------------

    def watch(self, on_change: Callable[[WorkerHealth], None]) -> None:
        """Call ``on_change`` whenever a worker becomes active or inactive."""
        self.monitor.on_change = on_change
