"""The HTTP worker fleet as an executor: the workers of config_workers.json.

Members are the configured workers, watched by a `HealthMonitor`. A worker's slots are
its ``capacity`` in the configuration if given, else ``min(capacity reported by its
/status, max_concurrent_tasks)``, and the used ones are those of the attempts in flight
there. A task of k threads takes k slots: k capped at the worker's slots and at the
threads its engine can use there (``engine_threads`` of its /status; one for a worker
that does not say, or that is not partisim), and it is sent with that many threads.
Placement: among the active workers that may run the task's engine (the entry's
``algorithms``; a worker that is not partisim only gets the engines with a legacy name),
the `SlotBook` of ``slots.py`` (no I/O) chooses and keeps the counts: the most free
slots wins, a verification run never goes to the worker of its original, a retry avoids
the worker that failed it while another one is alive, and a task of several threads
that fits nowhere yet holds back its best worker for the rest of the scheduling round.

An attempt is one ``POST /execute`` carrying the task id, so a retry after a lost
answer is recognised by the worker and never counted twice. A worker that refuses a
connection is suspended until it answers a ping again. A worker that is not partisim
(its /status has no ``"software": "partisim"``) is asked the same way; its answer is kept
as reported, not verifiable.

Tiny tasks (`partisim.sim.cost.tiny`: milliseconds of work against minutes of timeout)
go to a partisim worker in batches: up to `BATCH` of them in one ``POST
/execute/batch``, which runs them one after another in one slot, each with its own id,
record and answer. For such a task one HTTP request cost serve more than the whole
simulation cost the worker. `free_slots` then counts in units: a slot of a worker that
takes batches is `BATCH` units, a tiny task takes one, and the round's tiny tasks fill a
batch before another slot is taken.

When serve gives up on an answer (no answer in time, or a 5xx) the worker may still
run the task to the end while the retry runs it elsewhere. The fleet keeps asking that
worker about the task (``GET /tasks/{id}``) for a while; if it reports a success, the
run is reported to the scheduler, which counts it as a duplicate run of the task.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from partisim.errors import (
    ParamsError,
    PartisimError,
    TaskNotStarted,
    TaskRejected,
    TaskTimedOut,
    WorkerFailed,
    WorkerUnavailable,
)
from partisim.fleet import OrchestratorSettings
from partisim.fleet.client import AsyncWorkerClient
from partisim.fleet.health import HealthMonitor, WorkerHealth
from partisim.fleet.legacy import legacy_problem, legacy_request
from partisim.protocol import ExecuteRequest, ExecuteResult, MemberView, TaskResult, TaskState
from partisim.serve.executors.base import Attempt, Executor, Placement
from partisim.serve.executors.slots import Seat, SlotBook
from partisim.serve.executors.threads import as_asked, grant
from partisim.serve.queue.task import Task
from partisim.sim import parse_params
from partisim.sim.cost import tiny

__all__ = ["HttpFleet", "FOLLOW_INTERVAL_S", "ANSWER_MARGIN_S", "WATCH_INTERVAL_S", "MAX_WATCHES", "BATCH"]

log = logging.getLogger(__name__)

#: how often a task left running by a previous serve is asked about
FOLLOW_INTERVAL_S = 0.25
#: waited for an answer beyond a task's own timeout and the request timeout (the
#: default of the configuration's ``answer_margin``)
ANSWER_MARGIN_S = 10.0
#: how often a worker whose answer was given up on is asked whether it ran the task
WATCH_INTERVAL_S = 1.0
#: at most this many such watches at once (each is one small GET per interval)
MAX_WATCHES = 1000
#: tiny tasks in one ``POST /execute/batch`` (at most the worker's ``batch_max``)
BATCH = 16


@dataclass(eq=False)
class _Batch:
    """Tiny attempts going to one worker in one request; the batch holds one slot there."""

    member: str
    url: str
    size: int  # the most tiny tasks it carries
    placed: int = 1  # placements made into it (launched or not yet)
    attempts: list[Attempt] = field(default_factory=list)
    live: set[str] = field(default_factory=set)  # task ids whose outcome is still wanted

    @property
    def room(self) -> int:
        """Tiny tasks it may still take in this round."""
        return self.size - self.placed


T = TypeVar("T")


async def _answer(call: Awaitable[T], bound: float, url: str, what: str) -> T | PartisimError:
    """The answer of one request to a worker, or the error that stands for it: no answer
    within ``bound`` seconds, the worker's own error, or an answer we could not use."""
    try:
        return await asyncio.wait_for(call, timeout=bound)
    except asyncio.TimeoutError:
        return TaskTimedOut(f"{url}: sin respuesta en {bound:.0f} s")
    except PartisimError as exc:
        return exc
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise  # shutdown or cancel: no outcome; the queue keeps the task's state
    except Exception as exc:  # an answer we could not use: count it as a worker fault
        log.exception("respuesta inesperada de %s", what)
        return WorkerFailed(f"{url}: {exc}")


class HttpFleet(Executor):
    kind = "http"

    def __init__(
        self,
        monitor: HealthMonitor,
        settings: OrchestratorSettings,
        *,
        token: str | None = None,
        default_task_timeout: float = 600.0,
        follow_interval: float = FOLLOW_INTERVAL_S,
    ) -> None:
        super().__init__()
        self.monitor = monitor
        self.settings = settings
        self.token = token
        self.default_task_timeout = default_task_timeout
        self.follow_interval = follow_interval
        self._clients: dict[str, AsyncWorkerClient] = {}
        self.book = SlotBook()
        #: queued tasks only down workers could run (this round): task id -> (batch, why)
        self._waiting: dict[str, tuple[str, str]] = {}
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._watches: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._health: list[WorkerHealth] | None = None
        self._health_rounds = -1
        self._forming: dict[str, list[_Batch]] = {}  # member -> the batches this round fills
        self._sent: dict[str, _Batch] = {}  # task id -> the batch that carries it

    # -- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        await self.monitor.start()

    async def stop(self, grace: float) -> None:
        watches = list(self._watches.values())
        for watch in watches:
            watch.cancel()
        await asyncio.gather(*watches, return_exceptions=True)
        pending = list(set(self._jobs.values()))  # a batch's job carries several tasks
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
        entry = self.monitor.registry.entry(h.id)
        if entry is not None and entry.capacity is not None:
            return entry.capacity  # the user said so in the configuration
        # unknown capacity: be careful (one slot) until /status answers
        capacity = h.last_status.capacity if h.last_status is not None else 1
        return max(1, min(capacity, self.settings.max_concurrent_tasks))

    @staticmethod
    def _foreign(h: WorkerHealth) -> bool:
        """A worker whose /status says it is not partisim (unknown status: assume it is)."""
        return h.last_status is not None and not h.last_status.is_partisim

    def _why_not(self, h: WorkerHealth, task: Task) -> str | None:
        """Why ``task`` may not be sent to this worker, or None if it may."""
        entry = self.monitor.registry.entry(h.id)
        if entry is not None and not entry.runs(task.benchmark):
            return f"{h.id} no ejecuta el motor {task.benchmark} según la configuración"
        if not self._foreign(h):
            return None
        # a worker of the original design knows only the scripts' names (numpy would
        # silently run as Python there) and reads only three parameters
        problem = legacy_problem(task.benchmark, task.params, task.threads)
        return None if problem is None else f"{h.id} no es partisim: {problem}"

    def _runs(self, h: WorkerHealth, task: Task) -> bool:
        return self._why_not(h, task) is None

    def unplaceable(self, task: Task) -> str | None:
        healths = self.health()
        if not healths or any(self._runs(h, task) for h in healths):
            return None
        reasons = [r for r in (self._why_not(h, task) for h in healths[:3]) if r]
        more = f" (y {len(healths) - 3} más)" if len(healths) > 3 else ""
        return f"ningún worker configurado puede ejecutar esta tarea: {'; '.join(reasons)}{more}"

    def waiting(self) -> dict[str, tuple[str, str]]:
        return dict(self._waiting)

    def _usable(self, h: WorkerHealth) -> bool:
        return h.state == "active" and not self.book.suspended(h.id, h.last_seen)

    def _seat(self, h: WorkerHealth, task: Task | None = None) -> Seat:
        """The worker as the slot book sees it (for ``task``: the slots it takes there)."""
        return Seat(h.id, self._limit(h), self._usable(h), self.slots_for(h, task) if task is not None else 1)

    def slots_for(self, h: WorkerHealth, task: Task) -> int:
        """Slots (= threads) ``task`` takes on this worker (`threads.grant`)."""
        return grant(task.threads, task.benchmark, h.last_status, self._limit(h)).threads

    def _as_asked(self, result: TaskResult, attempt: Attempt) -> TaskResult:
        """The result with the threads the task asked for, where serve sent fewer."""
        task = attempt.task
        if not isinstance(result, ExecuteResult) or task.threads <= 1:
            return result
        h = next((h for h in self.health() if h.id == attempt.placement.member), None)
        why = grant(task.threads, task.benchmark, h.last_status if h else None, self._limit(h) if h else 1)
        return as_asked(result, task.threads, max(1, attempt.placement.slots), why.reason)

    def members(self) -> list[MemberView]:
        out = []
        for h in self.health():
            seat = self._seat(h)
            out.append(
                MemberView(
                    id=h.id,
                    kind="http",
                    url=h.url,
                    address=h.address,
                    state=h.state,
                    since=h.since,
                    latency_ms=h.latency_ms,
                    reported_id=h.reported_id,
                    consecutive_failures=h.consecutive_failures,
                    last_status=h.last_status,
                    last_error=h.last_error,
                    last_seen=h.last_seen,
                    checked_at=h.checked_at,
                    capacity=self._limit(h),
                    inflight=self.book.inflight[h.id],
                    free=self.book.free(seat),
                    dispatched=self.book.dispatched[h.id],
                    suspended=self.book.suspended(h.id, h.last_seen),
                )
            )
        return out

    def _batch_size(self, h: WorkerHealth) -> int:
        """Tiny tasks one request to this worker may carry (1: it takes no batches)."""
        status = h.last_status
        if status is None or not status.is_partisim or status.batch_max < 2:
            return 1
        return min(BATCH, status.batch_max)

    def free_slots(self) -> int:
        # in units: a slot of a worker that takes batches holds a batch of tiny tasks
        units = sum(self.book.open(self._seat(h)) * self._batch_size(h) for h in self.health())
        return units + sum(b.room for batches in self._forming.values() for b in batches)

    def round_start(self) -> None:
        self.book.round_start()
        self._waiting.clear()

    # -- placement ------------------------------------------------------------------

    def bound(self, task: Task) -> float:
        # Without its own timeout a task gets the worker's default; our own bound then
        # only guards against a worker that never answers.
        return (task.timeout or self.default_task_timeout) + self.settings.timeout + self.settings.answer_margin

    def place(self, task: Task) -> Placement | None:
        healths = [h for h in self.health() if self._runs(h, task)]
        if healths and not any(self._usable(h) for h in healths):
            names = ", ".join(h.id for h in healths[:5])
            self._waiting[task.id] = (task.batch, f"solo pueden ejecutarla workers que ahora no responden ({names})")
        # A tiny task takes a free slot while there is one (each slot gets its batch, so
        # the work spreads over the fleet as for any task), else joins this round's
        # emptiest batch.
        small = self._tiny(task)
        seats = [self._seat(h, task) for h in healths]
        seat = self.book.place(task.id, seats, exclude=task.exclude_worker, avoid=task.avoid_worker)
        if seat is None:
            return self._join(task, healths) if small else None
        h = next(h for h in healths if h.id == seat.id)
        size = self._batch_size(h)
        if small and size > 1 and seat.need == 1:
            self._forming.setdefault(h.id, []).append(_Batch(h.id, h.url, size))
            return Placement(h.id, h.url, 0, units=1, batched=True)
        return Placement(h.id, h.url, seat.need, units=seat.need * size)

    def _tiny(self, task: Task) -> bool:
        if task.threads > 1:
            return False
        try:
            params = parse_params(task.params)
        except ParamsError:
            return False  # the worker says what is wrong with them
        return tiny(params, task.timeout or self.default_task_timeout)

    def _join(self, task: Task, healths: list[WorkerHealth]) -> Placement | None:
        """A place for a tiny task in a batch this round already fills, or None."""
        usable = [h for h in healths if self._usable(h)]
        if task.exclude_worker is not None and len(healths) > 1:
            usable = [h for h in usable if h.id != task.exclude_worker]  # a verification: another machine
        if task.avoid_worker is not None and any(h.id != task.avoid_worker for h in usable):
            usable = [h for h in usable if h.id != task.avoid_worker]
        open_batches = [b for h in usable for b in self._forming.get(h.id, []) if b.room > 0]
        if not open_batches:
            return None
        batch = max(open_batches, key=lambda b: b.room)
        batch.placed += 1
        self.book.take(batch.member, 0)  # one more task given there; the batch has the slot
        return Placement(batch.member, batch.url, 0, units=1, batched=True)

    def unplace(self, placement: Placement) -> None:
        if not placement.batched:
            self.book.unplace(placement.member, placement.slots)
            return
        # a worker's batches of this round are alike: take it back from one that has
        # placements not launched yet
        batches = self._forming[placement.member]
        batch = next(b for b in reversed(batches) if b.placed > len(b.attempts))
        batch.placed -= 1
        self.book.unplace(placement.member, 0)
        if batch.placed == 0:  # nothing left in it: its slot is free again
            self.book.release(placement.member, 1)
            batches.remove(batch)
            if not batches:
                del self._forming[placement.member]

    # -- attempts -------------------------------------------------------------------

    def _client(self, url: str, member: str | None = None) -> AsyncWorkerClient:
        client = self._clients.get(url)
        if client is None:
            registry = self.monitor.registry
            token = (registry.token_of(member) if member is not None else registry.token) or self.token
            client = AsyncWorkerClient(url, timeout=self.settings.timeout, token=token, ca_file=registry.ca_file)
            self._clients[url] = client
        return client

    def _is_foreign(self, member: str) -> bool:
        return any(h.id == member and self._foreign(h) for h in self.health())

    def _track(self, attempt: Attempt, job: asyncio.Task[None]) -> None:
        """Free the slot when the job ends, however it ends."""
        task_id, member = attempt.task_id, attempt.placement.member
        self._jobs[task_id] = job

        def done(_: asyncio.Task[None]) -> None:
            self.book.release(member, attempt.placement.slots)
            if self._jobs.get(task_id) is job:
                del self._jobs[task_id]
            self._wake()

        job.add_done_callback(done)

    def launch(self, attempt: Attempt) -> None:
        if attempt.placement.batched:
            # sent once the round is over, with the round's other tiny tasks for that worker
            if not any(b.attempts for batches in self._forming.values() for b in batches):
                asyncio.get_running_loop().call_soon(self._send_batches)
            batches = self._forming[attempt.placement.member]
            next(b for b in batches if len(b.attempts) < b.placed).attempts.append(attempt)
            return
        job = asyncio.get_running_loop().create_task(self._execute(attempt), name=f"partisim-task-{attempt.task_id}")
        self._track(attempt, job)

    def _send_batches(self) -> None:
        forming, self._forming = self._forming, {}
        loop = asyncio.get_running_loop()
        for batch in (b for batches in forming.values() for b in batches):
            if not batch.attempts:  # placed but never launched: give its slot back
                self.book.release(batch.member, 1)
                continue
            batch.live = {a.task_id for a in batch.attempts}
            job = loop.create_task(self._execute_batch(batch), name=f"partisim-batch-{batch.attempts[0].task_id}")
            for attempt in batch.attempts:
                self._sent[attempt.task_id] = batch
                self._jobs[attempt.task_id] = job
            job.add_done_callback(functools.partial(self._batch_done, batch))

    def _batch_done(self, batch: _Batch, job: asyncio.Task[None]) -> None:
        self.book.release(batch.member, 1)
        for attempt in batch.attempts:
            if self._sent.get(attempt.task_id) is batch:
                del self._sent[attempt.task_id]
            if self._jobs.get(attempt.task_id) is job:
                del self._jobs[attempt.task_id]
        self._wake()

    async def _execute_batch(self, batch: _Batch) -> None:
        requests = [
            ExecuteRequest(benchmark=a.task.benchmark, params=a.task.params, task_id=a.task_id, timeout=a.task.timeout)
            for a in batch.attempts
        ]
        # the earliest deadline of its tasks bounds the whole batch: tiny tasks end in
        # milliseconds, so a batch that reaches it has a worker in trouble
        bound = max(0.0, min(a.deadline for a in batch.attempts) - time.time())
        client = self._client(batch.url, batch.member)
        call = client.execute_batch(requests, read=bound)
        outcomes = await _answer(call, bound, batch.url, f"{batch.member} a un lote")
        if isinstance(outcomes, PartisimError):
            self._batch_failed(batch, outcomes)
            return
        for attempt, outcome in zip(batch.attempts, outcomes, strict=True):
            if attempt.task_id not in batch.live:
                continue  # cancelled meanwhile: its outcome is not wanted
            if isinstance(outcome, PartisimError):
                self._failed(attempt, outcome)
            else:
                self.deliver(attempt, outcome)

    def _batch_failed(self, batch: _Batch, exc: PartisimError) -> None:
        """The request itself failed: every task still wanted gets that outcome."""
        wanted = [a for a in batch.attempts if a.task_id in batch.live]
        for k, attempt in enumerate(wanted):
            self._failed(attempt, exc, note=k == 0)

    def running(self, task_id: str) -> bool:
        return task_id in self._jobs

    def _failed(self, attempt: Attempt, exc: PartisimError, *, note: bool = True) -> None:
        """``note``: record a refused connection against the worker (once per request)."""
        if isinstance(exc, WorkerUnavailable):
            if note:
                self.book.suspend(attempt.placement.member, time.time())
                self.monitor.registry.record_failure(attempt.placement.member, str(exc))
                self._health = None  # the record changed: copy it again
        elif self._answer_lost(exc):
            self._watch(attempt)
        self.deliver(attempt, exc)

    @staticmethod
    def _answer_lost(exc: PartisimError) -> bool:
        """The worker may have run the task although serve has no answer: no answer in
        time (not the worker's own 504: it killed the task), or a 5xx."""
        if isinstance(exc, TaskTimedOut):
            return exc.status_code is None
        return isinstance(exc, WorkerFailed) and exc.status_code is not None and exc.status_code >= 500

    async def _execute(self, attempt: Attempt) -> None:
        task, url = attempt.task, attempt.placement.address
        slots = attempt.placement.slots
        request = ExecuteRequest(
            benchmark=task.benchmark,
            params=task.params,
            task_id=task.id,
            timeout=task.timeout,
            threads=slots if slots > 1 else None,
        )  # a worker of an older partisim knows no threads
        bound = max(0.0, attempt.deadline - time.time())
        client = self._client(url, attempt.placement.member)
        call: Awaitable[TaskResult] = (
            client.execute_foreign(legacy_request(request))
            if self._is_foreign(attempt.placement.member)
            else client.execute(request)
        )
        outcome = await _answer(call, bound, url, f"{attempt.placement.member} para {task.id}")
        if isinstance(outcome, PartisimError):
            self._failed(attempt, outcome)
        else:
            self.deliver(attempt, self._as_asked(outcome, attempt))

    def cancel(self, task_id: str, member: str | None, address: str | None) -> None:
        if address:
            asyncio.get_running_loop().create_task(self._cancel_remote(address, task_id, member))
        batch = self._sent.get(task_id)
        if batch is not None:
            # one task of a batch: the others go on; its answer will be dropped
            batch.live.discard(task_id)
            if not batch.live:
                self._jobs[task_id].cancel()
            return
        # Stop waiting for its answer now: the slot is free at once, even when the
        # worker hangs and never answers the DELETE (its answer would be dropped anyway).
        job = self._jobs.get(task_id)
        if job is not None:
            job.cancel()

    async def _cancel_remote(self, url: str, task_id: str, member: str | None = None) -> None:
        try:
            await self._client(url, member).cancel_task(task_id)
        except PartisimError as exc:
            log.info("no se pudo cancelar %s: %s", task_id, exc)  # the error names the worker's address

    # -- recovery -------------------------------------------------------------------

    def resume(self, task: Task) -> bool:
        if task.worker is None or task.worker_url is None:
            return False
        member = next((h for h in self.health() if h.id == task.worker), None)
        placement = Placement(task.worker, task.worker_url, self.slots_for(member, task) if member is not None else 1)
        deadline = task.deadline or (time.time() + self.default_task_timeout)
        attempt = Attempt(task, task.attempts, placement, deadline)
        self.book.take(placement.member, placement.slots)
        job = asyncio.get_running_loop().create_task(self._follow(attempt), name=f"partisim-follow-{task.id}")
        self._track(attempt, job)
        return True

    async def _follow(self, attempt: Attempt) -> None:
        """Ask the worker about the task by id until it is final, then deliver its outcome."""
        task, url = attempt.task, attempt.placement.address
        client = self._client(url, attempt.placement.member)
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

    # -- runs given up on -----------------------------------------------------------

    def _watch(self, attempt: Attempt) -> None:
        """Ask the worker whose answer was given up on whether it runs the task anyway."""
        member = attempt.placement.member
        key = (attempt.task_id, member)
        if key in self._watches or len(self._watches) >= MAX_WATCHES or self._is_foreign(member):
            return  # a worker that is not partisim keeps no record by task id
        watch = asyncio.get_running_loop().create_task(self._watch_run(attempt), name=f"partisim-watch-{key}")
        self._watches[key] = watch
        watch.add_done_callback(lambda _: self._watches.pop(key, None))

    async def _watch_run(self, attempt: Attempt) -> None:
        task, url, member = attempt.task, attempt.placement.address, attempt.placement.member
        client = self._client(url, member)
        # as long as the worker could let the task run, plus the time to hear about it
        until = time.time() + (task.timeout or self.default_task_timeout) + self.settings.timeout
        failures = 0
        while time.time() < until and failures < 5:
            try:
                state = await client.get_task(task.id)
            except TaskRejected:
                return  # 404: it never got the task; 401...: we cannot know
            except PartisimError:
                failures += 1  # down for now: the record may come back with it
            else:
                failures = 0
                if not state.pending:
                    if state.status == "success":
                        self.report_run(task.id, member)
                    return
            await asyncio.sleep(WATCH_INTERVAL_S)

    # -- for serve's log ------------------------------------------------------------

    def watch(self, on_change: Callable[[WorkerHealth], None]) -> None:
        """Call ``on_change`` whenever a worker becomes active or inactive."""
        self.monitor.on_change = on_change
