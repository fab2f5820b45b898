"""What ``partisim serve`` counts for Prometheus, made with `prometheus_client`.

`ServeMetrics` owns one `CollectorRegistry` per service (never the library's global
one, so several services built in one process do not collide). The scheduler feeds it
at the transitions it drives: attempts launched, the attempts put back without
counting, retried or failed for good, each by reason, dispatch latency and
task duration. What serve already keeps in memory (tasks by state, the executor's
members, the dashboard's clients, the database file) is read at scrape time by a
collector the web app registers (`partisim.serve.web.metrics`).

Label values are bounded: a reason is one of `REASONS`, never an error's text; no
task or batch id is ever a label.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram

from partisim.errors import (
    AuthError,
    PartisimError,
    TaskNotStarted,
    TaskRejected,
    TaskTimedOut,
    WorkerFailed,
    WorkerUnavailable,
)

__all__ = ["ServeMetrics", "reason_of", "REASONS", "DISPATCH_BUCKETS", "DURATION_BUCKETS"]

#: every value the ``reason`` label may take
REASONS = ("busy", "not_started", "auth", "rejected", "timeout", "unavailable", "worker_error", "other")

#: upper bounds (s) of the dispatch latency histogram (ready in the queue -> handed over)
DISPATCH_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
)
#: upper bounds (s) of the task duration histogram (handed over -> answer back)
DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
)


def reason_of(exc: PartisimError) -> str:
    """The category of an attempt's error, one of `REASONS`."""
    if isinstance(exc, TaskRejected) and exc.status_code == 429:
        return "busy"
    if isinstance(exc, TaskNotStarted):
        return "not_started"
    if isinstance(exc, AuthError):
        return "auth"
    if isinstance(exc, TaskRejected):
        return "rejected"
    if isinstance(exc, TaskTimedOut):
        return "timeout"
    if isinstance(exc, WorkerUnavailable):
        return "unavailable"
    if isinstance(exc, WorkerFailed):
        return "worker_error"
    return "other"


class ServeMetrics:
    """The counters and histograms of one service, and its registry."""

    def __init__(self, executor: str) -> None:
        self.executor = executor
        self.registry = CollectorRegistry()
        self._attempts = Counter(
            "partisim_serve_attempts",
            "Task attempts handed to the executor.",
            ["executor"],
            registry=self.registry,
        ).labels(executor)
        self._releases = Counter(
            "partisim_serve_releases",
            "Attempts that never started (the member was busy, or never got it), put back without counting, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self._retries = Counter(
            "partisim_serve_retries", "Attempts retried after an error, by reason.", ["reason"], registry=self.registry
        )
        self._failures = Counter(
            "partisim_serve_failures", "Tasks that failed for good, by reason.", ["reason"], registry=self.registry
        )
        self._dispatch = Histogram(
            "partisim_serve_dispatch_latency_seconds",
            "From ready in the queue to handed to the executor.",
            ["executor"],
            buckets=DISPATCH_BUCKETS,
            registry=self.registry,
        ).labels(executor)
        self._duration = Histogram(
            "partisim_serve_task_duration_seconds",
            "From handed to the executor to the attempt's answer, by outcome (success or error).",
            ["executor", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        # (task id, attempt) -> when it was handed over; at most the attempts in flight
        self._launched: dict[tuple[str, int], float] = {}
        for reason in REASONS:  # every series exists from the start: rate() needs no first sample
            self._releases.labels(reason)
            self._retries.labels(reason)
            self._failures.labels(reason)

    # -- the scheduler's transitions ---------------------------------------------------

    def launched(self, task_id: str, number: int, ready_at: float, now: float | None = None) -> None:
        """An attempt was handed over; the task had been ready since ``ready_at``."""
        now = time.time() if now is None else now
        self._attempts.inc()
        self._dispatch.observe(max(0.0, now - ready_at))
        self._launched[(task_id, number)] = now

    def answered(self, task_id: str, number: int, *, ok: bool, now: float | None = None) -> None:
        """The attempt's outcome arrived (its duration, when it was launched here)."""
        started = self._launched.pop((task_id, number), None)
        if started is None:  # resumed from a previous serve: its start is not known here
            return
        now = time.time() if now is None else now
        self._duration.labels(self.executor, "success" if ok else "error").observe(max(0.0, now - started))

    def forget(self, task_id: str) -> None:
        """The task was cancelled: its attempts will not answer."""
        for key in [k for k in self._launched if k[0] == task_id]:
            del self._launched[key]

    def attempt_error(self, exc: PartisimError, action: str) -> None:
        """An attempt failed; ``action``: release, retry or fail."""
        reason = reason_of(exc)
        if action == "release":
            self._releases.labels(reason).inc()
        elif action == "retry":
            self._retries.labels(reason).inc()
        elif action == "fail":
            self._failures.labels(reason).inc()
