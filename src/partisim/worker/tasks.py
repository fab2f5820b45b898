"""Task records, admission (capacity and a bounded queue), idempotency and history.

Slots: a task of k threads occupies k of the worker's `capacity` slots while it runs
(k is the request's ``threads`` capped at what its engine can use here, see
`TaskManager.threads_for`). The queue is first in, first out: a task waiting for k
slots is not overtaken by smaller ones that came after it, so it never starves.

`TaskManager` owns every state change of a task on this worker:
queued -> running -> success | failed | timeout, or cancelled from queued or
running. A `task_id` seen before is not run twice within the replay window: the same
id with the same engine and parameters gets the stored record back (the answer says it
is a replay), with different ones a 409. A task that finished more than
`replay_window` seconds ago runs again when its id comes back with the same work: a
benchmark asked for again is measured again, not answered with an old time.
Up to `retain` finished records are kept (the idempotency window and /history).
It knows nothing of HTTP: failures are `partisim.errors` exceptions.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import statistics
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import get_args

from pydantic import ValidationError

from partisim.errors import PartisimError, TaskRejected, TaskTimedOut, WorkerFailed, WorkerUnavailable
from partisim.protocol import FINAL_STATES, ExecuteResult, HistoryStatistics, TaskState, TaskStatus, task_id_problem
from partisim.protocol.base import STATUS_LABELS
from partisim.sim import SimParams, SimResult
from partisim.sim.engines import MIN_PARTICLES_FOR_THREADS, thread_plan
from partisim.sim.environment import MachineEnvironment, RunSample, judge, usable_cpus
from partisim.sim.result import NonFiniteResult
from partisim.sim.theory import coarse_step_warning
from partisim.worker.runners import Job, RunHandle, Runner

__all__ = ["TaskRecord", "TaskManager", "STATES", "FINAL_STATES", "iso", "new_task_id"]

log = logging.getLogger(__name__)

STATES: tuple[str, ...] = get_args(TaskStatus)


def iso(t: float | None = None) -> str:
    """An ISO-8601 UTC timestamp."""
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).isoformat()


def new_task_id() -> str:
    return uuid.uuid4().hex


@dataclass(eq=False)
class TaskRecord:
    task_id: str
    benchmark: str
    engine: str
    params: SimParams
    timeout: float  # the deadline applied, seconds
    timeout_requested: float | None = None  # what the request asked for
    threads: int = 1  # threads it runs on: the slots it occupies
    threads_requested: int | None = None  # what the request asked for
    created_at: float = field(default_factory=time.time)
    status: TaskStatus = "queued"
    started_at: float | None = None
    finished_at: float | None = None
    execution_time: float | None = None
    result: ExecuteResult | None = None  # the /execute success body
    error: PartisimError | None = None
    handle: RunHandle = field(default_factory=RunHandle)  # pid or container while running
    sample: RunSample | None = None  # the conditions of its run, gathered while it runs
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATES

    def same_work(self, engine: str, params: SimParams) -> bool:
        return self.engine == engine and self.params == params

    def state(self, worker_id: str, code: int | None) -> TaskState:
        """The record as ``GET /tasks/{id}`` shows it; ``code`` is its outcome's HTTP code."""
        return TaskState(
            task_id=self.task_id,
            status=self.status,
            code=code,
            worker_id=worker_id,
            benchmark=self.benchmark,
            engine=self.engine,
            params=self.params.to_api(),
            timeout=self.timeout,
            timeout_requested=self.timeout_requested,
            threads=self.threads,
            threads_requested=self.threads_requested,
            created_at=iso(self.created_at),
            started_at=iso(self.started_at) if self.started_at else None,
            finished_at=iso(self.finished_at) if self.finished_at else None,
            execution_time=self.execution_time,
            pid=self.handle.get("pid"),
            container=self.handle.get("container"),
            result=self.result,
            error=self.error.message if self.error else None,
        )


class TaskManager:
    """Admits, runs, remembers and cancels the tasks of one worker."""

    def __init__(
        self,
        runner: Runner,
        *,
        worker_id: str,
        capacity: int,
        queue_size: int,
        retain: int = 10_000,
        engine_threads: dict[str, int] | None = None,
        on_finished: Callable[[TaskRecord], None] | None = None,
        machine: MachineEnvironment | None = None,
        replay_window: float = 600.0,
    ) -> None:
        """`engine_threads`: the most threads a task of each engine can use on this
        machine (absent: one). `machine`: the static part of every result's environment
        (absent: results carry none). `replay_window`: seconds after it finished during
        which a task's id is answered from its record instead of running again."""
        self.machine = machine
        self.runner = runner
        self.worker_id = worker_id
        self.capacity = capacity
        self.queue_size = queue_size
        self.engine_threads = dict(engine_threads or {})
        self.retain = retain
        self.replay_window = replay_window
        self.on_finished = on_finished
        self._records: OrderedDict[str, TaskRecord] = OrderedDict()
        # ids cancelled before they reached us: an orchestrator may cancel a task whose
        # /execute is still on its way; when it arrives it must not run
        self._cancelled_early: OrderedDict[str, None] = OrderedDict()
        self._queue: deque[TaskRecord] = deque()
        self._running: set[TaskRecord] = set()
        self._durations: deque[float] = deque(maxlen=50)
        self.stopping = False

    # -- views --

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def slots_used(self) -> int:
        """Slots the running tasks occupy (each its threads)."""
        return sum(r.threads for r in self._running)

    def threads_for(self, engine: str, requested: int | None, particles: int | None = None) -> int:
        """Threads (and slots) a task asking for `requested` gets here: at most this
        worker's capacity and what its engine can use on this machine; one for a run
        too small for a second thread to help (`sim.engines.thread_plan`)."""
        if particles is not None and particles < MIN_PARTICLES_FOR_THREADS:
            return 1
        usable = self.engine_threads.get(engine, 1)
        return max(1, min(requested or 1, usable, self.capacity))

    def _threads_reason(self, rec: TaskRecord, reason: str | None) -> str | None:
        """Why the task ran on ``rec.threads``: the engine's reason, unless this worker
        capped the request first (its capacity, or the engine's threads here)."""
        asked = rec.threads_requested or 1
        if reason != "requested" or rec.threads >= asked:
            return reason
        planned = thread_plan(rec.engine, asked, rec.params.particles).reason
        # the engine's own reason (single thread, small...); not the load of the machine
        # now, after the run: the engine ran what the worker gave it
        if planned not in ("requested", "machine_cores", "busy_machine"):
            return planned
        cores = self.machine.usable_cpus if self.machine is not None else usable_cpus()
        return "worker_capacity" if rec.threads < cores and rec.threads >= self.capacity else "machine_cores"

    @property
    def queued(self) -> int:
        return len(self._queue)

    def get(self, task_id: str) -> TaskRecord:
        try:
            return self._records[task_id]
        except KeyError:
            raise TaskRejected(f"tarea desconocida en este worker: {task_id}", 404) from None

    def history(self, limit: int = 1000, status: str | None = None) -> list[TaskRecord]:
        """Newest first."""
        out: list[TaskRecord] = []
        for rec in reversed(self._records.values()):
            if status is None or rec.status == status:
                out.append(rec)
                if len(out) >= limit:
                    break
        return out

    def current(self) -> list[TaskRecord]:
        """The running tasks, the oldest first."""
        return sorted(self._running, key=lambda r: (r.started_at or 0.0, r.created_at))

    def statistics(self) -> HistoryStatistics:
        """Counts per status and execution times over every remembered task."""
        records = list(self._records.values())
        by_status = dict.fromkeys(STATES, 0)
        for rec in records:
            by_status[rec.status] += 1
        finished = sum(by_status[s] for s in FINAL_STATES)
        times = [r.execution_time for r in records if r.status == "success" and r.execution_time is not None]
        sims = [r.result.simulation_time for r in records if r.result is not None]
        return HistoryStatistics(
            total_tasks=len(records),
            by_status=by_status,
            completed_tasks=by_status["success"],
            failed_tasks=by_status["failed"] + by_status["timeout"],
            success_rate=by_status["success"] / finished if finished else None,
            average_execution_time=statistics.fmean(times) if times else None,
            min_execution_time=min(times) if times else None,
            max_execution_time=max(times) if times else None,
            average_simulation_time=statistics.fmean(sims) if sims else None,
        )

    def retry_after(self) -> int:
        """Seconds a refused client should wait: the queue ahead of it over the slots."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 1.0
        return int(min(60, max(1, math.ceil(mean * (self.queued + 1) / self.capacity))))

    # -- admission --

    def _known(self, task_id: str | None, engine: str, params: SimParams) -> TaskRecord | None:
        if task_id is not None and task_id in self._cancelled_early:
            raise TaskRejected(f"la tarea {task_id} fue cancelada antes de llegar a este worker", 409)
        if task_id is None or task_id not in self._records:
            return None
        rec = self._records[task_id]
        if not rec.same_work(engine, params):
            raise TaskRejected(
                f"task_id {task_id} ya se usó en este worker con otro benchmark o parámetros; use un task_id nuevo", 409
            )
        if rec.finished and rec.finished_at is not None and time.time() - rec.finished_at > self.replay_window:
            del self._records[task_id]  # past the window: the same work is measured again
            return None
        return rec

    async def submit(
        self,
        *,
        benchmark: str,
        engine: str,
        params: SimParams,
        timeout: float,
        task_id: str | None = None,
        timeout_requested: float | None = None,
        threads: int | None = None,
    ) -> tuple[TaskRecord, bool]:
        """Admit a task, or return the known one with this id. (record, created).
        `threads`: as the request asked (capped here, see `threads_for`)."""
        known = self._known(task_id, engine, params)
        if known is not None:
            return known, False
        if self.stopping:
            raise WorkerUnavailable("el worker se está deteniendo y no acepta tareas nuevas", 503)
        await self.runner.ensure_ready()
        known = self._known(task_id, engine, params)  # the same id may have come in meanwhile
        if known is not None:
            return known, False
        if self.stopping:
            raise WorkerUnavailable("el worker se está deteniendo y no acepta tareas nuevas", 503)
        slots = self.threads_for(engine, threads, params.particles)
        starts_now = not self._queue and self.slots_used + slots <= self.capacity
        if not starts_now and len(self._queue) >= self.queue_size:
            need = f"; esta tarea necesita {slots} plazas (una por hilo)" if slots > 1 else ""
            raise TaskRejected(
                f"worker ocupado: {self.running} tareas en curso ocupan {self.slots_used} plazas (capacidad "
                f"{self.capacity}) y {self.queued} en espera (cola máxima {self.queue_size}){need}; "
                "reintente más tarde",
                429,
            )
        rec = TaskRecord(
            task_id or new_task_id(),
            benchmark,
            engine,
            params,
            timeout,
            timeout_requested,
            threads=slots,
            threads_requested=threads,
        )
        self._records[rec.task_id] = rec
        self._queue.append(rec)
        self._forget_old()
        self._dispatch()
        return rec, True

    def _forget_old(self) -> None:
        excess = len(self._records) - self.retain
        if excess <= 0:
            return
        # oldest first, stopping at `excess`: not a scan of the whole window on every submit
        oldest = list(itertools.islice((k for k, r in self._records.items() if r.finished), excess))
        for task_id in oldest:
            del self._records[task_id]

    def _dispatch(self) -> None:
        # first in, first out: the oldest task waits for its slots; none overtakes it
        while self._queue and self.slots_used + self._queue[0].threads <= self.capacity:
            rec = self._queue.popleft()
            self._running.add(rec)
            rec.status = "running"
            rec.started_at = time.time()
            rec.sample = RunSample(rec.threads)
            self._note_sharing()
            rec.task = asyncio.get_running_loop().create_task(self._execute(rec), name=f"task-{rec.task_id}")

    def _note_sharing(self) -> None:
        """Tell every running task's sample which tasks run beside it now."""
        in_use = self.slots_used
        for rec in self._running:
            if rec.sample is not None:
                rec.sample.sharing(in_use, {r.task_id for r in self._running if r is not rec})

    #: seconds between two readings of the machine's runnable threads during a run
    SAMPLE_INTERVAL = 0.05

    async def _watch(self, sample: RunSample) -> None:
        """Read the machine's runnable threads until cancelled (the run is over)."""
        while True:
            sample.sample()
            await asyncio.sleep(self.SAMPLE_INTERVAL)

    async def _execute(self, rec: TaskRecord) -> None:
        start = time.perf_counter()
        sample = rec.sample or RunSample(rec.threads)
        watcher = asyncio.get_running_loop().create_task(self._watch(sample), name=f"sample-{rec.task_id}")

        def elapsed() -> float:
            return time.perf_counter() - start

        job = Job(rec.task_id, rec.engine, rec.params, rec.timeout, rec.threads)
        try:
            try:
                result = await self.runner.run(job, on_started=rec.handle.update)
            finally:
                watcher.cancel()
                sample.finish()
        except asyncio.CancelledError:
            self._finish(
                rec,
                "cancelled",
                elapsed(),
                error=WorkerUnavailable("el worker se detuvo antes de terminar la tarea", 503)
                if self.stopping
                else TaskRejected("la tarea fue cancelada", 409),
            )
        except TaskTimedOut as exc:
            if rec.timeout_requested is not None and rec.timeout_requested != rec.timeout:
                exc = TaskTimedOut(
                    f"{exc.message} (se pidieron {rec.timeout_requested:g} s; este worker aplica "
                    "entre 0.5 s y su --max-timeout)",
                    exc.status_code,
                )
            self._finish(rec, "timeout", elapsed(), error=exc)
        except PartisimError as exc:
            self._finish(rec, "failed", elapsed(), error=exc)
        except Exception as exc:  # a bug here must not take the worker down
            log.exception("error inesperado al ejecutar la tarea %s", rec.task_id)
            self._finish(
                rec, "failed", elapsed(), error=WorkerFailed(f"error interno del worker: {type(exc).__name__}", 500)
            )
        else:
            took = elapsed()  # one measurement: the record and its result say the same
            try:
                rec.result = self._result(rec, result, took)
            except PartisimError as exc:
                self._finish(rec, "failed", took, error=exc)
            else:
                self._finish(rec, "success", took)
        finally:
            self._running.discard(rec)
            if not self.stopping:
                self._dispatch()

    def _result(self, rec: TaskRecord, sim: SimResult, took: float) -> ExecuteResult:
        """The success body; a value that JSON cannot carry (NaN, Infinity) fails the task.

        It carries the coarse-step warning of its parameters (advice, worked out here, so
        a result run in a container says it too; cached per box and step)."""
        try:
            warning = coarse_step_warning(rec.params)
        except Exception:  # advice must never cost a result
            log.exception("no se pudo estimar el aviso de paso de tiempo de la tarea %s", rec.task_id)
            warning = None
        reason = self._threads_reason(rec, sim.threads_reason)
        environment = None
        if self.machine is not None and rec.sample is not None:
            environment = judge(
                rec.sample,
                machine=self.machine,
                threads_requested=rec.threads_requested or 1,
                threads_used=sim.threads,
                threads_reason=reason or "requested",
            )
        try:
            return ExecuteResult(
                engine=rec.engine,
                params=rec.params.to_api(),
                particles=rec.params.particles,
                steps=rec.params.steps,
                seed=rec.params.seed,
                # what the runner measured
                particle_collisions=sim.particle_collisions,
                wall_collisions=sim.wall_collisions,
                checksum=sim.checksum,
                kinetic_energy=sim.kinetic_energy,
                simulation_time=sim.simulation_time,
                particle_steps_per_s=sim.particle_steps_per_s,
                threads=sim.threads,
                task_id=rec.task_id,
                worker_id=self.worker_id,
                benchmark=rec.benchmark,
                execution_time=took,
                runner=self.runner.name,
                timestamp=iso(),
                timeout=rec.timeout,
                timeout_requested=rec.timeout_requested,
                threads_requested=rec.threads_requested,
                threads_reason=reason,
                environment=environment,
                warnings=[warning] if warning else [],
            )
        except ValidationError as exc:
            # the task fails; nothing that is not strict JSON is ever kept
            errors = exc.errors()
            fields = [str(e["loc"][0]) for e in errors if e.get("loc")]
            if all(e["type"] == "finite_number" for e in errors):
                raise NonFiniteResult(fields) from None
            raise WorkerFailed(f"el runner devolvió un resultado no válido ({', '.join(fields)})", 500) from None

    def _finish(
        self, rec: TaskRecord, status: TaskStatus, execution_time: float | None, *, error: PartisimError | None = None
    ) -> None:
        """`execution_time` is None for a task that never started."""
        rec.status = status
        rec.error = error
        rec.finished_at = time.time()
        if execution_time is not None:
            rec.execution_time = execution_time
            self._durations.append(execution_time)
        if status == "success":
            log.debug("tarea %s terminada en %.3f s", rec.task_id, rec.execution_time or 0.0)
        else:
            log.info("tarea %s: %s (%s)", rec.task_id, status, error.message if error else "-")
        rec.done.set()
        if self.on_finished:
            self.on_finished(rec)

    # -- waiting and cancelling --

    async def wait(self, rec: TaskRecord) -> TaskRecord:
        await rec.done.wait()
        return rec

    async def cancel(self, task_id: str) -> TaskRecord:
        if task_id not in self._records and task_id_problem(task_id) is None:  # only ids a task could have
            self._cancelled_early[task_id] = None
            while len(self._cancelled_early) > self.retain:
                self._cancelled_early.popitem(last=False)
        rec = self.get(task_id)  # unknown: still a 404, but remembered above
        if rec.finished:
            raise TaskRejected(
                f"la tarea {task_id} ya terminó ({STATUS_LABELS[rec.status]}); no se puede cancelar", 409
            )
        if rec.status == "queued":
            self._queue.remove(rec)
            self._finish(rec, "cancelled", None, error=TaskRejected("la tarea fue cancelada", 409))
        elif rec.task is not None:
            rec.task.cancel()
            await asyncio.wait({rec.task})
        return rec

    # -- shutdown --

    def begin_shutdown(self) -> None:
        """Stop admitting; tasks still waiting in the queue will not run."""
        if self.stopping:
            return
        self.stopping = True
        while self._queue:
            rec = self._queue.popleft()
            self._finish(
                rec, "cancelled", None, error=WorkerUnavailable("el worker se detuvo antes de ejecutar la tarea", 503)
            )

    async def shutdown(self, deadline: Callable[[], float]) -> None:
        """Let running tasks finish until `deadline()` (time.monotonic; it may move closer), then kill them."""
        self.begin_shutdown()
        pending = {r.task for r in self._running if r.task is not None}
        if pending:
            log.info(
                "esperando a %d tarea(s) en curso (hasta %.0f s)", len(pending), max(0.0, deadline() - time.monotonic())
            )
        while pending:
            remaining = deadline() - time.monotonic()
            if remaining <= 0:
                break
            _, pending = await asyncio.wait(pending, timeout=min(remaining, 0.25))
        if pending:
            log.warning("se detienen %d tarea(s) que no terminaron a tiempo", len(pending))
            for t in pending:
                t.cancel()
            await asyncio.wait(pending)
        await self.runner.close()
