"""What the dashboard's event stream (``GET /api/events``) carries: the models of its
rows and of the data of its events, read by the feed that builds them
(`partisim.serve.web.live`) and by the tests that follow the stream."""

from __future__ import annotations

from pydantic import Field

from partisim.protocol.base import Finite, Wire
from partisim.protocol.queue_api import MemberView, Summary, TaskTimings, TaskView
from partisim.sim.environment import ContentionReason

__all__ = [
    "LiveEnvironment",
    "LiveResult",
    "LiveTask",
    "LiveWorkerStatus",
    "LiveWorker",
    "ActivityBucket",
    "LiveMessage",
    "SECTIONS",
]

#: the sections of the live state, in the order every event lists them
SECTIONS = ("summary", "workers", "recent", "activity")


class LiveEnvironment(Wire):
    """What the page shows of a result's environment: whether the machine was busy, and why."""

    contended: bool = False
    contended_by: list[ContentionReason] = Field(default_factory=list)


class LiveResult(Wire):
    """The fields of a result that the page's task list shows."""

    engine: str
    simulation_time: Finite
    execution_time: Finite
    particle_collisions: int
    wall_collisions: int
    kinetic_energy: Finite
    checksum: str
    threads: int | None = None
    threads_requested: int | None = None
    threads_reason: str | None = None
    environment: LiveEnvironment | None = None


class LiveTask(TaskView):
    """A row of the page's latest tasks: the task without its timings, with a short result."""

    timings: TaskTimings | None = Field(default=None, exclude=True)  # type: ignore[assignment]
    result: LiveResult | None = None  # type: ignore[assignment]


class LiveWorkerStatus(Wire):
    """The fields of a worker's own /status that the page shows."""

    runner: str | None = None
    cpu_count: int | None = None
    load_avg: list[Finite] | None = None
    version: str = ""
    capacity: int = 1
    running: int = 0


class LiveWorker(MemberView):
    """A row of the page's workers: the member, with a short status of its own."""

    last_status: LiveWorkerStatus | None = None  # type: ignore[assignment]


class ActivityBucket(Wire):
    """Finished tasks per second in the window that starts at ``t`` (epoch seconds)."""

    t: Finite
    per_s: Finite


class LiveMessage(Wire):
    """The data of a ``snapshot`` (every section), ``update`` (the sections that changed)
    or ``heartbeat`` (none) event; ``v`` is the version of the live state."""

    v: int
    server_time: Finite
    summary: Summary | None = None
    workers: list[LiveWorker] | None = None
    recent: list[LiveTask] | None = None
    activity: list[ActivityBucket] | None = None
