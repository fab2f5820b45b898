"""What the routers of ``partisim serve`` share: the parts of the service (`ServeState`)
and the read models built from them (summary, workers)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from partisim.protocol import MemberView, Summary
from partisim.serve.executors.base import Executor
from partisim.serve.notifier import Notifier
from partisim.serve.options import DEFAULT_PAGE_SIZE
from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import FAILED, SUCCESS
from partisim.serve.scheduler import Scheduler

__all__ = ["ServeState", "state_of", "summary", "workers", "THROUGHPUT_WINDOW_S", "DEFAULT_PAGE_SIZE"]

THROUGHPUT_WINDOW_S = 60


@dataclass
class ServeState:
    """The running service, held by the app (``app.state.serve``)."""

    queue: TaskQueue
    scheduler: Scheduler
    notifier: Notifier = field(default_factory=Notifier)
    #: per-router caches (the dashboard keeps its live feed here)
    caches: dict[str, Any] = field(default_factory=dict)
    #: most tasks per page; a larger ``limit`` gets this many and a ``next`` cursor
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def executor(self) -> Executor:
        return self.scheduler.executor


def state_of(request: Request) -> ServeState:
    serve: ServeState = request.app.state.serve
    return serve


def summary(
    state: ServeState, batch: str | None = None, *, members: list[MemberView] | None = None, now: float | None = None
) -> Summary:
    """Counts per status, throughput of the last minute, active workers. O(1) in the
    size of the queue: counts from memory, the window from a range of an index."""
    now = time.time() if now is None else now
    counts = state.queue.live_counts(batch)
    if batch is None:
        finished = state.queue.finished_recently(THROUGHPUT_WINDOW_S, now)
    else:
        finished = state.queue.finished_since(now - THROUGHPUT_WINDOW_S, batch)
    members = state.executor.members() if members is None else members
    active = sum(1 for m in members if m.state == "active")
    return Summary(
        **counts,
        batch=batch,
        finished_last_60s=finished,
        throughput_per_s=round(finished / THROUGHPUT_WINDOW_S, 3),
        workers_active=active,
        workers_total=len(members),
        done=counts["queued"] == 0 and counts["running"] == 0,
        timestamp=now,
        waiting=_waiting(state, batch, counts["queued"], active, members),
    )


def _waiting(state: ServeState, batch: str | None, queued: int, active: int, members: list[MemberView]) -> str | None:
    """Why queued tasks wait: the workers that could run them are configured but down."""
    if queued == 0:
        return None
    if active == 0 and members:
        names = ", ".join(m.id for m in members[:5])
        return f"{queued} en cola: ningún worker configurado responde ({names}); esperan a que alguno vuelva"
    found = [why for b, why in state.executor.waiting().values() if batch is None or b == batch]
    if not found:
        return None
    reasons = "; ".join(dict.fromkeys(found))
    return f"{len(found)} en cola esperan: {reasons}"


def workers(state: ServeState, *, members: list[MemberView] | None = None) -> list[MemberView]:
    """Each member with the tasks it completed and failed (counted in memory)."""
    done = state.queue.assigned_per_worker(SUCCESS)
    failed = state.queue.assigned_per_worker(FAILED)
    members = state.executor.members() if members is None else members
    return [m.model_copy(update={"completed": done.get(m.id, 0), "failed": failed.get(m.id, 0)}) for m in members]
