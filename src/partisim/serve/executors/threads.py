"""How many threads a task gets on a worker, and why: the one rule serve places tasks by
(a task of k threads takes k slots) and writes into their results. No I/O.

The worker sees only the request serve sends, already capped, so it would call a capped
task's threads "requested": `as_asked` puts back what the task asked for, and why it got
fewer (`sim.engines.ThreadReason`)."""

from __future__ import annotations

from dataclasses import dataclass

from partisim.protocol import ExecuteResult, WorkerStatus

__all__ = ["Grant", "grant", "as_asked"]


@dataclass(frozen=True)
class Grant:
    threads: int
    #: a `sim.engines.ThreadReason`
    reason: str


def grant(asked: int, engine: str, status: WorkerStatus | None, slots: int) -> Grant:
    """Threads a task asking for ``asked`` gets on a worker of this /status with ``slots``
    slots here: at most its slots and what its engine can use there. A worker that does
    not say (older partisim, not partisim) runs it on one thread."""
    if asked <= 1:
        return Grant(1, "requested")
    if status is None or not status.is_partisim:
        return Grant(1, "worker_capacity")
    # the worker's engine threads are already capped at its capacity
    usable = status.engine_threads.get(engine, 1) if status.engine_threads else status.max_threads
    threads = max(1, min(asked, usable, slots))
    if threads >= asked:
        return Grant(threads, "requested")
    if engine != "cython":
        return Grant(threads, "single_threaded_engine")
    return Grant(threads, "worker_capacity" if min(status.capacity, slots) < asked else "machine_cores")


def as_asked(result: ExecuteResult, asked: int, sent: int, reason: str) -> ExecuteResult:
    """``result`` of a task sent with ``sent`` threads where it asked for ``asked``, saying
    so (in the result and its environment); as it is when nothing was capped, or when the
    worker cut further for its own reason (that reason stays)."""
    if asked <= sent or (result.threads_requested or 1) > sent:
        return result
    if result.threads_reason not in (None, "requested"):
        reason = result.threads_reason
    env = result.environment
    if env is not None:
        env = env.model_copy(update={"threads_requested": asked, "threads_reason": reason})
    return result.model_copy(update={"threads_requested": asked, "threads_reason": reason, "environment": env})
