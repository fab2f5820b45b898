"""A task of the queue, as the rest of serve sees it: its states, what to run
(`TaskSpec`), one decoded row (`Task`) and the per-configuration time sums that the
charts, the report and the Física line read (`TimeStats`). `taskqueue` stores them.

States: ``queued -> running (worker, attempt, deadline) -> success | failed | cancelled``;
a running task may also go back to ``queued`` (retry, or released without counting).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Final, get_args

from partisim.protocol import ExecuteResult, ForeignResult, QueueStatus, TaskTimings, TaskView
from partisim.sim.params import ApiParams

__all__ = [
    "QUEUED",
    "RUNNING",
    "SUCCESS",
    "FAILED",
    "CANCELLED",
    "STATUSES",
    "queue_status",
    "to_microseconds",
    "FINAL_STATUSES",
    "TaskSpec",
    "Task",
    "TimeStats",
    "new_batch_id",
]

QUEUED: Final = "queued"
RUNNING: Final = "running"
SUCCESS: Final = "success"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
STATUSES: tuple[QueueStatus, ...] = get_args(QueueStatus)
FINAL_STATUSES: tuple[QueueStatus, ...] = (SUCCESS, FAILED, CANCELLED)


def to_microseconds(seconds: float) -> float:
    """``seconds`` rounded to whole microseconds, half away from zero, by the same double
    operations as SQLite's ``round(x)`` (see ``rows.microseconds_sql``): the page that
    SQLite writes and the model's view must agree to the bit. Python's ``round(x, 6)``
    rounds half to even, and SQLite's ``round(x, 6)`` reads its own decimal text back
    one ulp off at times; both disagreed in CI."""
    scaled = seconds * 1_000_000.0
    whole = int(abs(scaled) + 0.5)
    return (whole if scaled >= 0 else -whole) / 1_000_000.0


def queue_status(text: str) -> QueueStatus:
    """A state read back from the store, checked (ValueError for one it never writes)."""
    for status in STATUSES:
        if status == text:
            return status
    raise ValueError(f"estado de tarea desconocido en la cola: {text!r}")


def new_batch_id(prefix: str = "b") -> str:
    """A short, sortable batch id such as ``b-20240521-134501-k3w9x2m7qa4tz``: the second
    it was made, then 65 random bits (13 base-32 characters, no look-alike letters), so
    two ids never collide, however many are made in one second."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base 32: no i, l, o, u
    bits = secrets.randbits(65)
    tail = "".join(alphabet[(bits >> (5 * k)) & 31] for k in range(13))
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{tail}"


@dataclass(frozen=True)
class TaskSpec:
    """What to run: an engine name and the full API parameter dict (alias keys)."""

    benchmark: str
    params: ApiParams
    timeout: float | None = None
    verify_of: str | None = None
    exclude_worker: str | None = None
    threads: int = 1  # threads asked for the one simulation (slots where it runs)
    priority: int = 0  # higher is dispatched first; FIFO within a level
    label: str | None = None  # the user's own name for the task (an ETAPA-6 task_id)


@dataclass
class Task:
    """One row of the queue, decoded."""

    id: str
    seq: int
    batch: str
    status: QueueStatus
    benchmark: str
    params: ApiParams
    timeout: float | None
    verify_of: str | None
    exclude_worker: str | None
    avoid_worker: str | None
    worker: str | None
    worker_url: str | None
    attempts: int
    max_attempts: int
    not_before: float
    deadline: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    result: ExecuteResult | None
    error: str | None
    foreign_result: ForeignResult | None = None
    extra_runs: tuple[str, ...] = ()
    threads: int = 1
    #: why the row is not a valid task (`rows.row_to_task`); None: intact
    damaged: str | None = None
    priority: int = 0
    label: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def duplicates(self) -> int:
        """Runs of this task beyond one: the workers known to have run it (the recorded
        one and those in ``extra_runs``) less one. A worker never runs one task id
        twice, so each worker counts once; a retry answered by the same worker from its
        record is no second run."""
        runs = set(self.extra_runs)
        if self.status == SUCCESS and self.worker is not None:
            runs.add(self.worker)
        return max(0, len(runs) - 1)

    def view(self) -> TaskView:
        """The task as ``GET /api/tasks`` shows it."""
        queue_s = run_s = None
        if self.started_at is not None:
            queue_s = to_microseconds(self.started_at - self.created_at)
            if self.finished_at is not None:
                run_s = to_microseconds(self.finished_at - self.started_at)
        return TaskView(
            id=self.id,
            seq=self.seq,
            batch=self.batch,
            status=self.status,
            benchmark=self.benchmark,
            params=self.params,
            worker=self.worker,
            attempts=self.attempts,
            max_attempts=self.max_attempts,
            timings=TaskTimings(
                created_at=self.created_at,
                started_at=self.started_at,
                finished_at=self.finished_at,
                queue_s=queue_s,
                run_s=run_s,
            ),
            result=self.result,
            error=self.error,
            verify_of=self.verify_of,
            verifiable=self.foreign_result is None,
            foreign_result=self.foreign_result,
            duplicates=self.duplicates,
            threads=self.threads,
            damaged=self.damaged,
            priority=self.priority,
            label=self.label,
        )


@dataclass(frozen=True)
class TimeStats:
    """Simulation times of one batch's successful runs of one configuration, summed in
    SQL: ``params`` holds every parameter but particles, steps and seed (sorted JSON).
    Also summed: pair collisions and final kinetic energies (the Física line), and the
    distinct warnings the results carry."""

    batch: str
    engine: str
    particles: int
    steps: int
    params: str
    n: int
    total: float
    total_sq: float
    collisions: int = 0
    energy: float = 0.0
    warnings: tuple[str, ...] = ()
    threads: int = 1  # the threads the runs used: runs on several are grouped apart
    runner: str = ""  # process or docker ("" for a result that does not say)
    cpu: str = ""  # the CPU model of the workers ("" where unknown)
    contended: bool = False  # measured on a busy machine (`Environment.contended`)
    minimum: float = 0.0
    times: tuple[float, ...] = ()  # every time, for the median
    workers: tuple[str, ...] = ()
