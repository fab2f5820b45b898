"""What the routers of ``partisim serve`` share: the parts of the service (`ServeState`)
and the read models built from them (summary, workers, live snapshot)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from partisim.orchestrator.serve.executor import Executor
from partisim.orchestrator.serve.notifier import Notifier
from partisim.orchestrator.serve.scheduler import Scheduler
from partisim.orchestrator.serve.taskqueue import FAILED, SUCCESS, TaskQueue
from partisim.protocol import MemberView, Summary

__all__ = ["ServeState", "state_of", "summary", "workers", "snapshot", "THROUGHPUT_WINDOW_S"]

THROUGHPUT_WINDOW_S = 60.0


@dataclass
class ServeState:
    """The running service, held by the app (``app.state.serve``)."""

    queue: TaskQueue
    scheduler: Scheduler
    notifier: Notifier = field(default_factory=Notifier)
    #: per-router caches (the dashboard keeps its live state here)
    caches: dict[str, Any] = field(default_factory=dict)

    @property
    def executor(self) -> Executor:
        return self.scheduler.executor


def state_of(request: Request) -> ServeState:
    serve: ServeState = request.app.state.serve
    return serve


def summary(state: ServeState, batch: str | None = None) -> Summary:
    """Counts per status, throughput of the last minute, active workers."""
    now = time.time()
    counts = state.queue.counts(batch)
    finished = state.queue.finished_since(now - THROUGHPUT_WINDOW_S, batch)
    members = state.executor.members()
    return Summary(
        **counts,
        batch=batch,
        finished_last_60s=finished,
        throughput_per_s=round(finished / THROUGHPUT_WINDOW_S, 3),
        workers_active=sum(1 for m in members if m.state == "active"),
        workers_total=len(members),
        done=counts["queued"] == 0 and counts["running"] == 0,
        timestamp=now,
    )


def workers(state: ServeState) -> list[MemberView]:
    """Each member with the tasks it completed and failed (from the queue)."""
    done = state.queue.assigned_per_worker(SUCCESS)
    failed = state.queue.assigned_per_worker(FAILED)
    return [m.model_copy(update={"completed": done.get(m.id, 0), "failed": failed.get(m.id, 0)})
            for m in state.executor.members()]


def snapshot(state: ServeState) -> dict[str, Any]:
    """Everything a live view needs in one JSON-ready dict: summary, workers, recent tasks."""
    return {
        "summary": summary(state).model_dump(mode="json"),
        "workers": [w.model_dump(mode="json") for w in workers(state)],
        "recent": [t.view().model_dump(mode="json") for t in state.queue.tasks(limit=20)],
    }
