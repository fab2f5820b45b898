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

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from partisim.sim.environment import Environment, MachineEnvironment
from partisim.sim.params import ApiParams

__all__ = [
    "Finite",
    "TaskStatus",
    "QueueStatus",
    "PENDING_STATES",
    "FINAL_STATES",
    "PingReply",
    "HealthReport",
    "WorkerStatus",
    "ExecuteRequest",
    "ExecuteResult",
    "ForeignResult",
    "TaskResult",
    "WIRE_NAMES",
    "wire_name",
    "SOFTWARE",
    "TaskState",
    "History",
    "HistoryStatistics",
    "CurrentTasks",
    "ErrorBody",
    "TASK_ID_MAX",
    "task_id_problem",
    "TaskTimings",
    "TaskView",
    "TaskList",
    "Submitted",
    "Summary",
    "BatchInfo",
    "MemberView",
    "WorkerList",
    "ChartPoint",
    "ChartSeries",
    "ChartSpeedup",
    "ChartBatch",
    "ChartPhysics",
    "ChartData",
]

#: a float that is never NaN nor +-Infinity (JSON has neither)
Finite = Annotated[float, Field(allow_inf_nan=False)]

#: states of a task on a worker (``GET /tasks/{id}``)
TaskStatus = Literal["queued", "running", "success", "failed", "timeout", "cancelled"]
#: states of a task in the queue of ``partisim serve`` (``GET /api/tasks``)
QueueStatus = Literal["queued", "running", "success", "failed", "cancelled"]
PENDING_STATES: frozenset[str] = frozenset({"queued", "running"})
FINAL_STATES: frozenset[str] = frozenset({"success", "failed", "timeout", "cancelled"})


#: longest task_id, in characters (ids are any printable text; see `task_id_problem`)
TASK_ID_MAX = 128


def task_id_problem(task_id: object) -> str | None:
    """Why `task_id` cannot be a task id (Spanish), or None when it can.

    Any printable text of 1 to TASK_ID_MAX characters (spaces, "ñ", "/" included);
    control characters, line separators and lone surrogates are refused."""
    if not isinstance(task_id, str):
        return "debe ser un texto"
    if not task_id:
        return "no puede estar vacío"
    if len(task_id) > TASK_ID_MAX:
        return f"demasiado largo ({len(task_id)} caracteres; máximo {TASK_ID_MAX})"
    if not task_id.isprintable():
        return "contiene caracteres de control o no imprimibles"
    return None


#: what a partisim worker says in ``/status`` "software"; a worker without it is foreign
SOFTWARE = "partisim"

#: the names clients put on the wire: every worker of this family understands the
#: original scripts' names; numpy has no such name and goes by its own
WIRE_NAMES: dict[str, str] = {"python": "benchmark.py", "cython": "benchmark_cython.py"}


def wire_name(engine: str) -> str:
    """The ``benchmark`` a client sends for an engine (``cython`` -> ``benchmark_cython.py``)."""
    return WIRE_NAMES.get(engine, engine)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- the worker's API ---------------------------------------------------------------


class PingReply(_Wire):
    """``GET /ping``. With a token set, an anonymous caller gets only ``status``,
    ``timestamp`` and ``message`` (liveness): ``worker_id`` is then None."""

    status: Literal["active"]
    worker_id: str | None = None
    timestamp: str = ""  # "" from a worker that does not say
    message: str = ""
    #: a worker of the users' original design counts its tasks here (partisim's own
    #: counters are in /status); None from a worker that does not say
    successful_tasks: int | None = None
    failed_tasks: int | None = None

    @field_validator("successful_tasks", "failed_tasks", mode="before")
    @classmethod
    def _count_or_none(cls, value: Any) -> int | None:
        # another design's counters: a value that is not a count is ignored, never a failed ping
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class HealthReport(_Wire):
    """``GET /health``. With a token set, an anonymous caller gets only ``status`` and
    ``timestamp``: no ``worker_id``, no ``checks`` (Docker version, image...)."""

    status: Literal["healthy", "unhealthy"]
    worker_id: str | None = None
    checks: dict[str, Any] = Field(default_factory=dict)
    timestamp: str


class WorkerStatus(_Wire):
    """``GET /status``. Defaults let the status of a worker of another make decode too
    (see `lenient`); ``software`` says whether it is a partisim worker."""

    worker_id: str
    software: str = ""
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
    #: slots the running tasks occupy (a task of k threads takes k of ``capacity``)
    slots_used: int = 0
    queued: int = 0
    queue_size: int = 0
    completed: int = 0
    failed: int = 0
    timeouts: int = 0
    cancelled: int = 0
    uptime_s: Finite = 0.0
    cpu_count: int | None = None
    #: most threads one task can use on this worker (min(capacity, cores); 1 without OpenMP)
    max_threads: int = 1
    #: threads a task of each engine can use here (python and numpy: 1)
    engine_threads: dict[str, int] = Field(default_factory=dict)
    #: whether the cython engine was built with OpenMP (several threads possible)
    openmp: bool = False
    #: the static part of every result's environment here (`sim.environment`)
    environment: MachineEnvironment | None = None
    load_avg: list[Finite] | None = None
    max_timeout: Finite = 0.0
    limits: dict[str, int] = Field(default_factory=dict)
    auth_required: bool = False
    tls: bool = False
    request_timeout: Finite | None = None
    max_connections: int | None = None
    timestamp: str = ""

    @property
    def is_partisim(self) -> bool:
        return self.software == SOFTWARE

    @classmethod
    def lenient(cls, body: dict[str, Any]) -> WorkerStatus:
        """The status of a worker that is not partisim: every field that fits is kept,
        the others fall back to their defaults (such a worker may say ``"status":
        "online"`` or report numbers as text)."""
        data = dict(body)
        data["worker_id"] = str(data.get("worker_id") or "")
        for _ in range(len(data) + 1):
            try:
                return cls.model_validate(data)
            except ValidationError as exc:
                bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
                if not bad or not bad & set(data):
                    break
                for key in bad:
                    data.pop(key, None)
        return cls(worker_id=data["worker_id"])


class ExecuteRequest(_Wire):
    """The body of ``POST /execute`` and ``POST /tasks`` as a client sends it. The
    worker reads bodies with its own strict parser (`worker.payload`), which refuses
    unknown fields and names the offending one in Spanish."""

    benchmark: str
    params: dict[str, Any] = Field(default_factory=dict)
    task_id: str | None = None
    timeout: Finite | None = None
    #: threads for this one simulation (the worker caps them; None: one)
    threads: int | None = Field(default=None, ge=1)

    def body(self) -> dict[str, Any]:
        """The JSON body, with the engine under its wire name (`wire_name`)."""
        data = self.model_dump(exclude_none=True)
        data["benchmark"] = wire_name(self.benchmark)
        return data


class ExecuteResult(_Wire):
    """``POST /execute`` -> 200: one simulation's outcome on one worker."""

    status: Literal["success"] = "success"
    task_id: str
    worker_id: str
    benchmark: str
    engine: str
    params: ApiParams
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
    #: the deadline this worker applied, in seconds: the one asked for, brought into
    #: [0.5, --max-timeout]; None from a worker that does not say
    timeout: Finite | None = None
    #: what the request asked for (None: no timeout given, the worker's maximum applies)
    timeout_requested: Finite | None = None
    #: threads the simulation really used (None from a worker that does not say)
    threads: int | None = None
    #: threads the request asked for (None: not given, one)
    threads_requested: int | None = None
    #: why ``threads`` (`sim.engines.ThreadReason`); None from a worker that does not say
    threads_reason: str | None = None
    #: where and how it was measured, and whether the machine was busy (`sim.environment`)
    environment: Environment | None = None
    #: Spanish advice on the parameters (a step so coarse it misses collisions); never
    #: a change to the result
    warnings: list[str] = Field(default_factory=list)
    #: True when this answer is the stored result of an earlier run of the same task_id
    #: (within the worker's --replay-window): the times are that run's, not a new one
    replayed: bool = False
    #: when that earlier run finished (ISO 8601), on a replay
    first_run_at: str | None = None


class ForeignResult(_Wire):
    """A success answer from a worker that is not partisim (say, the users' original
    ETAPA-4 worker): what it reported, kept as reported, and marked not verifiable.

    Such a worker sends no engine and no checksum, and its collision counts may be null,
    so nothing here can be cross-checked: ``verifiable`` is always False. ``engine`` is
    the engine partisim asked for (the answer does not say which one ran);
    ``reported`` is the answer itself (made strict JSON: non-finite numbers dropped)."""

    verifiable: Literal[False] = False
    status: Literal["success"] = "success"
    task_id: str
    worker_id: str
    engine: str
    benchmark: str | None = None
    execution_time: Finite | None = None
    simulation_time: Finite | None = None
    particle_collisions: int | None = None
    wall_collisions: int | None = None
    kinetic_energy: Finite | None = None
    timestamp: str | None = None
    reported: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_answer(cls, body: dict[str, Any], *, task_id: str, engine: str, worker_id: str) -> ForeignResult:
        """Decode a foreign answer field by field: what does not fit is left out."""
        found: dict[str, Any] = {}
        for name in (
            "benchmark",
            "execution_time",
            "simulation_time",
            "particle_collisions",
            "wall_collisions",
            "kinetic_energy",
            "timestamp",
        ):
            value = body.get(name)
            if value is None:
                continue
            try:
                cls.model_validate({"task_id": task_id, "worker_id": worker_id, "engine": engine, name: value})
            except ValidationError:
                continue
            found[name] = value
        reported_id = body.get("worker_id")
        return cls(
            task_id=task_id,
            engine=engine,
            worker_id=reported_id if isinstance(reported_id, str) and reported_id else worker_id,
            reported=_strict_json(body),
            **found,
        )


#: a successful attempt's outcome: verifiable (a partisim worker) or not (another's)
TaskResult = ExecuteResult | ForeignResult


def _strict_json(value: Any, depth: int = 0) -> Any:
    """``value`` without NaN/Infinity (dropped) and cut at a sane depth and size."""
    if depth > 8:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _strict_json(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, list):
        return [_strict_json(v, depth + 1) for v in value[:200]]
    if isinstance(value, str):
        return value[:20_000]
    if value is None or isinstance(value, (bool, int)):
        return value
    return str(value)[:200]


class TaskState(_Wire):
    """``GET /tasks/{id}``: a task's record on a worker. ``code`` is the HTTP-style
    code of its outcome (200 success, 4xx refused, 5xx failed, 504 timed out)."""

    task_id: str
    status: TaskStatus
    code: int | None = None
    worker_id: str
    benchmark: str
    engine: str
    params: ApiParams
    timeout: Finite
    timeout_requested: Finite | None = None
    #: threads given to the task: the slots of ``capacity`` it occupies (the request's
    #: ``threads`` capped at this worker's ``max_threads`` for its engine)
    threads: int = 1
    threads_requested: int | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    execution_time: Finite | None = None
    pid: int | None = None
    container: str | None = None
    result: ExecuteResult | None = None
    error: str | None = None
    #: as in `ExecuteResult`: this answer came from the record of an earlier request
    replayed: bool = False
    first_run_at: str | None = None

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATES


class HistoryStatistics(_Wire):
    """``GET /history`` → ``statistics``: over every task this worker remembers (up to
    ``--retain``), whatever the ``limit`` and ``status`` of the request."""

    total_tasks: int = 0
    #: tasks per status (queued, running, success, failed, timeout, cancelled)
    by_status: dict[str, int] = Field(default_factory=dict)
    completed_tasks: int = 0  # success
    failed_tasks: int = 0  # failed + timeout
    success_rate: Finite | None = None  # success / finished (0..1); None before any finished
    average_execution_time: Finite | None = None  # seconds, over the successful tasks
    min_execution_time: Finite | None = None
    max_execution_time: Finite | None = None
    average_simulation_time: Finite | None = None


class History(_Wire):
    """``GET /history``: the newest task records first. ``task_history`` repeats ``tasks``
    and ``statistics`` summarises them, as the users' ETAPA-6 scripts read them."""

    worker_id: str
    count: int
    tasks: list[TaskState]
    task_history: list[TaskState] = Field(default_factory=list)
    statistics: HistoryStatistics = Field(default_factory=HistoryStatistics)


class CurrentTasks(_Wire):
    """``GET /current``: the tasks running now, and how many wait in the queue."""

    worker_id: str
    count: int
    tasks: list[TaskState]
    queued: int = 0


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


class TaskList(_Wire):
    """A page of ``GET /api/tasks``; ``next`` is the cursor of the following page (None
    on the last): pass it as ``after_seq`` (oldest first) or ``before_seq`` (newest first)."""

    tasks: list[TaskView]
    count: int
    next: int | None = None


class Submitted(_Wire):
    """``POST /api/tasks`` and ``POST /api/sweeps`` -> 201. ``warning`` says, in Spanish,
    what the user should know before waiting (e.g. no worker is active); ``warnings``,
    what the parameters deserve (a time step so coarse it misses collisions), one per
    distinct text."""

    batch: str
    ids: list[str]
    count: int
    warning: str | None = None
    warnings: list[str] = Field(default_factory=list)


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
    #: rows of the database that are no valid task (see `TaskView.damaged`), found at start
    damaged: int = 0
    #: why queued tasks are not moving, in Spanish (the workers that could run them do
    #: not answer); None when nothing waits for that
    waiting: str | None = None

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


# -- chart data (``GET /api/charts``): aggregates, never raw results ------------------


class ChartPoint(_Wire):
    """Mean simulation time of one configuration at one size (``n`` runs)."""

    particles: int
    mean: Finite
    stdev: Finite
    n: int
    median: Finite | None = None
    minimum: Finite | None = None
    #: coefficient of variation; above 10% the point is "inestable"
    cv: Finite = 0.0
    unstable: bool = False
    #: runs among ``n`` measured on a busy machine (marked on the chart)
    contended: int = 0


class ChartSeries(_Wire):
    """One line of the time chart: an engine at one configuration (steps and every other
    parameter that varies among the results shown), with its own drawing style."""

    key: str
    engine: str
    steps: int
    params: dict[str, Any] = {}
    config: str = ""
    label: str
    color: str
    marker: str
    dash: str
    filled: bool = True
    points: list[ChartPoint]


class ChartSpeedup(_Wire):
    """cython vs python at one size and configuration (both engines ran it)."""

    particles: int
    steps: int
    params: dict[str, Any] = {}
    config: str = ""
    color: str
    python: Finite
    cython: Finite
    value: Finite
    #: 95% confidence interval of ``value`` (None with fewer than two runs of either engine)
    low: Finite | None = None
    high: Finite | None = None
    #: what makes the pair comparable: "worker" (one worker, ``where``) or "cpu" (its model)
    basis: str = "worker"
    where: str = ""


class ChartBatch(_Wire):
    """A batch the charts can show: its successful (non-verification) results."""

    batch: str
    created_at: Finite
    results: int
    pending: int


class ChartPhysics(_Wire):
    """The "Física" line of the results shown: measured pair collisions over kinetic
    theory (``ratio``) and what the time step lets through (``expected``), or, with
    ``shown`` False, ``text`` saying why not (docs/fisica.md)."""

    text: str
    shown: bool
    ratio: Finite | None = None
    expected: Finite | None = None
    tasks: int = 0
    collisions: int = 0
    left_out: int = 0


class ChartData(_Wire):
    """``GET /api/charts?batch=``: what is drawn (``batch`` None: every batch), the
    batches to choose from (newest first), the dimensions that vary, lines and bars;
    the Física line and the distinct warnings the results carry."""

    success: int
    batch: str | None = None
    latest: str | None = None
    batches: list[ChartBatch] = []
    varied: list[str] = []
    series: list[ChartSeries] = []
    speedup: list[ChartSpeedup] = []
    physics: ChartPhysics | None = None
    warnings: list[str] = []
    #: runs measured on a busy machine left out of the speed-ups (and whether they are shown)
    contended_left_out: int = 0
    contended_shown: bool = False
