"""The worker's API: ``/ping``, ``/health``, ``/status``, ``/execute``, ``/tasks``,
``/history``, and its error body."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, JsonValue, ValidationError, field_validator

from partisim.protocol.base import PENDING_STATES, SOFTWARE, Finite, TaskStatus, Wire, wire_name
from partisim.sim.environment import Environment, MachineEnvironment
from partisim.sim.params import ApiParams

__all__ = [
    "PingReply",
    "HealthReport",
    "WorkerStatus",
    "ExecuteRequest",
    "ExecuteBatchRequest",
    "ExecuteBatchReply",
    "BatchAnswer",
    "BATCH_MAX",
    "ExecuteResult",
    "ForeignResult",
    "TaskResult",
    "TaskState",
    "HistoryStatistics",
    "History",
    "CurrentTasks",
    "ErrorBody",
]

# -- the worker's API ---------------------------------------------------------------


class PingReply(Wire):
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
    def _count_or_none(cls, value: object) -> int | None:
        # another design's counters: a value that is not a count is ignored, never a failed ping
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class HealthReport(Wire):
    """``GET /health``. With a token set, an anonymous caller gets only ``status`` and
    ``timestamp``: no ``worker_id``, no ``checks`` (Docker version, image...)."""

    status: Literal["healthy", "unhealthy"]
    worker_id: str | None = None
    checks: dict[str, Any] = Field(default_factory=dict)
    timestamp: str


class WorkerStatus(Wire):
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
    #: the most tasks one ``POST /execute/batch`` takes (0: a worker without that route)
    batch_max: int = 0
    #: whether the cython engine was built with OpenMP (several threads possible)
    openmp: bool = False
    #: the static part of every result's environment here (`sim.environment`)
    environment: MachineEnvironment | None = None
    #: the running kernel's boot id: workers that report the same one share a machine's
    #: CPUs (the demo runs them one after another); "" where unknown
    host_id: str = ""
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
    def lenient(cls, body: Mapping[str, JsonValue]) -> WorkerStatus:
        """The status of a worker that is not partisim: every field that fits is kept,
        the others fall back to their defaults (such a worker may say ``"status":
        "online"`` or report numbers as text)."""
        data = dict(body)
        worker_id = data["worker_id"] = str(data.get("worker_id") or "")
        for _ in range(len(data) + 1):
            try:
                return cls.model_validate(data)
            except ValidationError as exc:
                bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
                if not bad or not bad & set(data):
                    break
                for key in bad:
                    data.pop(key, None)
        return cls(worker_id=worker_id)


class ExecuteRequest(Wire):
    """The body of ``POST /execute`` and ``POST /tasks`` as a client sends it. The
    worker reads bodies with its own strict parser (`worker.payload`), which refuses
    unknown fields and names the offending one in Spanish."""

    benchmark: str
    params: dict[str, Any] = Field(default_factory=dict)
    task_id: str | None = None
    timeout: Finite | None = None
    #: threads for this one simulation (the worker caps them; None: one)
    threads: int | None = Field(default=None, ge=1)

    def body(self) -> dict[str, JsonValue]:
        """The JSON body, with the engine under its wire name (`wire_name`)."""
        data = self.model_dump(exclude_none=True)
        data["benchmark"] = wire_name(self.benchmark)
        return data


#: the most tasks one ``POST /execute/batch`` carries
BATCH_MAX = 64


class ExecuteBatchRequest(Wire):
    """The body of ``POST /execute/batch``: tasks the worker runs one after another in one
    of its slots, each exactly as ``POST /execute`` runs it (its own id, replay window,
    timeout, record and measurement). Serve sends its tiny tasks this way: for a
    simulation of milliseconds an HTTP request costs more than the simulation."""

    tasks: list[ExecuteRequest] = Field(min_length=1, max_length=BATCH_MAX)

    def body(self) -> dict[str, JsonValue]:
        return {"tasks": [task.body() for task in self.tasks]}


class ExecuteResult(Wire):
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


class ForeignResult(Wire):
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
    def from_answer(cls, body: Mapping[str, JsonValue], *, task_id: str, engine: str, worker_id: str) -> ForeignResult:
        """Decode a foreign answer field by field: what does not fit is left out."""
        found: dict[str, JsonValue] = {}
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


def _strict_json(value: object, depth: int = 0) -> JsonValue:
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


class TaskState(Wire):
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


class HistoryStatistics(Wire):
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


class History(Wire):
    """``GET /history``: the newest task records first. ``task_history`` repeats ``tasks``
    and ``statistics`` summarises them, as the users' ETAPA-6 scripts read them."""

    worker_id: str
    count: int
    tasks: list[TaskState]
    task_history: list[TaskState] = Field(default_factory=list)
    statistics: HistoryStatistics = Field(default_factory=HistoryStatistics)


class CurrentTasks(Wire):
    """``GET /current``: the tasks running now, and how many wait in the queue."""

    worker_id: str
    count: int
    tasks: list[TaskState]
    queued: int = 0


class ErrorBody(Wire):
    """Every error answer of both APIs: ``{"status": ..., "error": "<mensaje>"}``."""

    status: str
    error: str
    task_id: str | None = None
    field: str | None = None


class BatchAnswer(Wire):
    """One task of a batch: what ``POST /execute`` would have answered for it, with that
    answer's HTTP code (200 and the result, or the code and the error body)."""

    code: int
    result: ExecuteResult | None = None
    error: ErrorBody | None = None


class ExecuteBatchReply(Wire):
    """``POST /execute/batch`` -> 200: one answer per task, in the request's order."""

    worker_id: str
    answers: list[BatchAnswer]
