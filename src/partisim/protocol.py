"""Typed models of everything that crosses the wire.

Two APIs: the worker's (``/ping``, ``/status``, ``/execute``, ``/tasks``...) and the one
of ``partisim serve`` (``/api/tasks``, ``/api/summary``...). The worker builds its
answers from these models and every client decodes into them, so code past the HTTP
layer reads attributes, never ``.get()`` chains. Field names are the contract the
users' own scripts read: never rename one.

Decoding is lenient about *extra* fields (a newer worker may add some) and strict about
the ones we use. Floats are finite: a model never holds NaN or Infinity, so every JSON
made from one is strict JSON.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Finite",
    "TaskStatus",
    "PENDING_STATES",
    "FINAL_STATES",
    "PingReply",
    "HealthReport",
    "WorkerStatus",
    "ExecuteRequest",
    "ExecuteResult",
    "TaskState",
    "History",
    "ErrorBody",
    "TaskTimings",
    "TaskView",
    "TaskList",
    "Submitted",
    "Summary",
    "BatchInfo",
    "MemberView",
    "WorkerList",
]

#: a float that is never NaN nor +-Infinity (JSON has neither)
Finite = Annotated[float, Field(allow_inf_nan=False)]

#: states of a task on a worker (``GET /tasks/{id}``)
TaskStatus = Literal["queued", "running", "success", "failed", "timeout", "cancelled"]
PENDING_STATES: frozenset[str] = frozenset({"queued", "running"})
FINAL_STATES: frozenset[str] = frozenset({"success", "failed", "timeout", "cancelled"})


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- the worker's API ---------------------------------------------------------------


class PingReply(_Wire):
    status: Literal["active"]
    worker_id: str
    timestamp: str
    message: str


class HealthReport(_Wire):
    status: Literal["healthy", "unhealthy"]
    worker_id: str
    checks: dict[str, Any]
    timestamp: str


class WorkerStatus(_Wire):
    """``GET /status``. Defaults let the status of a worker of another make decode too."""

    worker_id: str
    address: str = ""
    addresses: list[str] = Field(default_factory=list)
    version: str = ""
    status: Literal["ready", "busy"] = "ready"
    accepting: bool = True
    engines: list[str] = Field(default_factory=list)
    runner: str | None = None
    runner_requested: str = ""
    runner_note: str | None = None
    docker_available: bool = False
    image_available: bool = False
    docker_image: str = ""
    docker_version: str | None = None
    docker_error: str | None = None
    capacity: int = 1
    running: int = 0
    queued: int = 0
    queue_size: int = 0
    completed: int = 0
    failed: int = 0
    timeouts: int = 0
    cancelled: int = 0
    uptime_s: Finite = 0.0
    cpu_count: int | None = None
    load_avg: list[Finite] | None = None
    max_timeout: Finite = 0.0
    limits: dict[str, int] = Field(default_factory=dict)
    auth_required: bool = False
    timestamp: str = ""


class ExecuteRequest(_Wire):
    """The body of ``POST /execute`` and ``POST /tasks`` as a client sends it. The
    worker reads bodies with its own strict parser (`worker.payload`), which refuses
    unknown fields and names the offending one in Spanish."""

    benchmark: str
    params: dict[str, Any] = Field(default_factory=dict)
    task_id: str | None = None
    timeout: Finite | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ExecuteResult(_Wire):
    """``POST /execute`` -> 200: one simulation's outcome on one worker."""

    status: Literal["success"] = "success"
    task_id: str
    worker_id: str
    benchmark: str
    engine: str
    params: dict[str, Any]
    particles: int
    steps: int
    seed: int
    execution_time: Finite
    simulation_time: Finite
    particle_collisions: int
    wall_collisions: int
    checksum: str
    kinetic_energy: Finite
    particle_steps_per_s: Finite
    runner: str
    timestamp: str


class TaskState(_Wire):
    """``GET /tasks/{id}``: a task's record on a worker. ``code`` is the HTTP-style
    code of its outcome (200 success, 4xx refused, 5xx failed, 504 timed out)."""

    task_id: str
    status: TaskStatus
    code: int | None = None
    worker_id: str
    benchmark: str
    engine: str
    params: dict[str, Any]
    timeout: Finite
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    execution_time: Finite | None = None
    pid: int | None = None
    container: str | None = None
    result: ExecuteResult | None = None
    error: str | None = None

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATES


class History(_Wire):
    """``GET /history``: the newest task records first."""

    worker_id: str
    count: int
    tasks: list[TaskState]


class ErrorBody(_Wire):
    """Every error answer of both APIs: ``{"status": ..., "error": "<mensaje>"}``."""

    status: str
    error: str
    task_id: str | None = None
    field: str | None = None


# -- the API of partisim serve --------------------------------------------------------


class TaskTimings(_Wire):
    created_at: Finite
    started_at: Finite | None = None
    finished_at: Finite | None = None
    queue_s: Finite | None = None
    run_s: Finite | None = None


class TaskView(_Wire):
    """One task of the queue (``GET /api/tasks``, ``GET /api/tasks/{id}``)."""

    id: str
    seq: int
    batch: str
    status: Literal["queued", "running", "success", "failed", "cancelled"]
    benchmark: str
    params: dict[str, Any]
    worker: str | None = None
    attempts: int
    max_attempts: int
    timings: TaskTimings
    result: ExecuteResult | None = None
    error: str | None = None
    verify_of: str | None = None


class TaskList(_Wire):
    """A page of ``GET /api/tasks``; ``next`` is the cursor of the following page (None
    on the last): pass it as ``after_seq`` (oldest first) or ``before_seq`` (newest first)."""

    tasks: list[TaskView]
    count: int
    next: int | None = None


class Submitted(_Wire):
    """``POST /api/tasks`` and ``POST /api/sweeps`` -> 201."""

    batch: str
    ids: list[str]
    count: int


class Summary(_Wire):
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

    @property
    def finished(self) -> int:
        return self.success + self.failed + self.cancelled


class BatchInfo(_Wire):
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


class MemberView(_Wire):
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


class WorkerList(_Wire):
    workers: list[MemberView]
