"""The API of ``partisim serve``: tasks as the queue shows them, summaries, batches,
members."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from partisim.protocol.base import Finite, QueueStatus, Wire
from partisim.protocol.worker_api import ExecuteResult, ForeignResult, WorkerStatus
from partisim.sim.params import ApiParams

__all__ = ["TaskTimings", "TaskView", "TaskList", "Submitted", "Summary", "BatchInfo", "MemberView", "WorkerList"]

# -- the API of partisim serve --------------------------------------------------------


class TaskTimings(Wire):
    """The queue's times of a task (Unix seconds), not the benchmark's: those are the
    result's own ``execution_time`` and ``simulation_time``."""

    created_at: Finite
    started_at: Finite | None = None
    finished_at: Finite | None = None
    queue_s: Finite | None = Field(default=None, description="De encolar a asignarla a un worker (s).")
    # a tiny task goes in one request with others (POST /execute/batch) and is answered
    # with them: its span is the batch's, which must not pass for the task's own time
    run_s: Finite | None = Field(
        default=None,
        description="De asignarla a recibir la respuesta (s), red y espera incluidas; en una tarea"
        " enviada en lote (POST /execute/batch), el lote entero. El tiempo del benchmark es"
        " result.execution_time.",
    )


class TaskView(Wire):
    """One task of the queue (``GET /api/tasks``, ``GET /api/tasks/{id}``)."""

    id: str
    seq: int
    batch: str
    status: QueueStatus
    benchmark: str
    params: ApiParams
    worker: str | None = None
    attempts: int
    max_attempts: int
    timings: TaskTimings
    result: ExecuteResult | None = None
    error: str | None = None
    verify_of: str | None = None
    #: False when a worker that is not partisim ran it: its answer is in ``foreign_result``
    verifiable: bool = True
    foreign_result: ForeignResult | None = None
    #: runs of this task that finished on some worker besides the recorded one (a retry
    #: after a lost answer, say); 0 when it ran exactly once
    duplicates: int = 0
    #: threads asked for (the worker may use fewer: ``result.threads`` says how many)
    threads: int = 1
    #: why the stored row is not a valid task (unknown status, malformed JSON); None: intact.
    #: A damaged task is shown as failed and never run
    damaged: str | None = None
    #: dispatch priority: higher first, FIFO within a level
    priority: int = 0
    #: the user's own name for the task (the ``task_id`` of an ETAPA-6 file)
    label: str | None = None


class TaskList(Wire):
    """A page of ``GET /api/tasks``; ``next`` is the cursor of the following page (None
    on the last): pass it as ``after_seq`` (oldest first) or ``before_seq`` (newest first)."""

    tasks: list[TaskView]
    count: int
    next: int | None = None


class Submitted(Wire):
    """``POST /api/tasks`` and ``POST /api/sweeps`` -> 201. ``warning`` says, in Spanish,
    what the user should know before waiting (e.g. no worker is active); ``warnings``,
    what the parameters deserve (a time step so coarse it misses collisions), one per
    distinct text."""

    batch: str
    ids: list[str]
    count: int
    warning: str | None = None
    warnings: list[str] = Field(default_factory=list)


class Summary(Wire):
    """``GET /api/summary``: counts per status (of one batch or the whole queue)."""

    queued: int
    running: int
    success: int
    failed: int
    cancelled: int
    total: int
    batch: str | None = None
    finished_last_60s: int
    throughput_per_s: Finite
    workers_active: int
    workers_total: int
    done: bool
    timestamp: Finite
    #: rows of the database that are no valid task (see `TaskView.damaged`), found at start
    damaged: int = 0
    #: why queued tasks are not moving, in Spanish (the workers that could run them do
    #: not answer); None when nothing waits for that
    waiting: str | None = None

    @property
    def finished(self) -> int:
        return self.success + self.failed + self.cancelled


class BatchInfo(Wire):
    """One item of ``GET /api/batches``."""

    batch: str
    created_at: Finite
    finished_at: Finite | None = None
    queued: int
    running: int
    success: int
    failed: int
    cancelled: int
    total: int


class MemberView(Wire):
    """One item of ``GET /api/workers``: a member of the executor (an HTTP worker, or a
    Dask worker), its health and the scheduler's view of its slots."""

    id: str
    kind: Literal["http", "dask"] = "http"
    url: str
    address: str
    state: Literal["active", "inactive"]
    since: Finite | None = None
    latency_ms: Finite | None = None
    reported_id: str | None = None
    consecutive_failures: int = 0
    last_status: WorkerStatus | None = None
    last_error: str | None = None
    last_seen: Finite | None = None
    checked_at: Finite | None = None
    capacity: int
    inflight: int
    free: int
    dispatched: int = 0
    suspended: bool = False
    completed: int = 0
    failed: int = 0
    threads: int | None = None
    memory_bytes: int | None = None
    dashboard_url: str | None = None


class WorkerList(Wire):
    workers: list[MemberView]
