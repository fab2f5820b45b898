"""The worker's /metrics, made with `prometheus_client`.

Each `Metrics` owns its own `CollectorRegistry` (never the library's global one), so
several workers built in one process do not collide. Counts the worker also shows in
/status (tasks by final status, refused requests) live here in plain dicts, and a
collector turns them into Prometheus counters at scrape time; the gauges (running,
queued, capacity, uptime) are read from the worker at scrape time too. Only the task
duration is a `Histogram` fed as tasks finish. No task id is ever a label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

__all__ = ["Metrics", "WorkerGauges", "BUCKETS"]

#: upper bounds (s) of the task duration histogram
BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)


@dataclass(frozen=True)
class WorkerGauges:
    """What the worker is at the moment of a scrape."""

    version: str
    runner: str
    running: int
    queued: int
    capacity: int
    uptime_s: float


class Metrics:
    """The worker's counters and its Prometheus registry."""

    def __init__(self, statuses: Iterable[str], worker_id: str) -> None:
        self.worker_id = worker_id
        #: finished tasks by final status (also what /status reports)
        self.tasks = {s: 0 for s in statuses}
        #: requests refused before running, by HTTP code
        self.rejected: dict[int, int] = {}
        #: ``POST /execute/batch`` requests answered, and the tasks they carried
        self.batches = 0
        self.batched_tasks = 0
        self.registry = CollectorRegistry()
        self._duration = Histogram(
            "partisim_worker_task_duration_seconds",
            "Wall time of finished tasks.",
            ["worker_id"],
            buckets=BUCKETS,
            registry=self.registry,
        ).labels(worker_id)
        self._gauges: Callable[[], WorkerGauges] | None = None
        self.registry.register(_WorkerCollector(self))

    def read_gauges_with(self, gauges: Callable[[], WorkerGauges]) -> None:
        """Where a scrape reads the worker's current state."""
        self._gauges = gauges

    def current(self) -> WorkerGauges | None:
        """The worker's state now (None before `read_gauges_with`)."""
        return self._gauges() if self._gauges is not None else None

    def task_finished(self, status: str, duration: float | None) -> None:
        self.tasks[status] = self.tasks.get(status, 0) + 1
        if duration is not None:
            self._duration.observe(duration)

    def request_refused(self, code: int) -> None:
        self.rejected[code] = self.rejected.get(code, 0) + 1

    def batch_answered(self, tasks: int) -> None:
        self.batches += 1
        self.batched_tasks += tasks

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (body, content type) in the format the scraper asked for."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class _WorkerCollector:
    """Reads the worker's counts and state when Prometheus scrapes."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        wid = m.worker_id
        tasks = CounterMetricFamily(
            "partisim_worker_tasks", "Tasks finished, by final status.", labels=["worker_id", "status"]
        )
        for status, n in sorted(m.tasks.items()):
            tasks.add_metric([wid, status], n)
        yield tasks
        refused = CounterMetricFamily(
            "partisim_worker_requests_refused",
            "Requests refused before running, by HTTP code.",
            labels=["worker_id", "code"],
        )
        for code, n in sorted(m.rejected.items()):
            refused.add_metric([wid, str(code)], n)
        yield refused
        for name, help_text, count in (
            ("batches", "POST /execute/batch requests answered.", m.batches),
            ("batched_tasks", "Tasks carried by POST /execute/batch requests.", m.batched_tasks),
        ):
            counter = CounterMetricFamily(f"partisim_worker_{name}", help_text, labels=["worker_id"])
            counter.add_metric([wid], count)
            yield counter
        now = m.current()
        if now is None:
            return
        info = GaugeMetricFamily("partisim_worker_info", "Worker identity.", labels=["worker_id", "version", "runner"])
        info.add_metric([wid, now.version, now.runner], 1)
        yield info
        for name, help_text, value in (
            ("running", "Tasks running now.", float(now.running)),
            ("queued", "Tasks waiting for a slot.", float(now.queued)),
            ("capacity", "Tasks that may run at once.", float(now.capacity)),
            ("uptime_seconds", "Seconds since the worker started.", round(now.uptime_s, 3)),
        ):
            gauge = GaugeMetricFamily(f"partisim_worker_{name}", help_text, labels=["worker_id"])
            gauge.add_metric([wid], value)
            yield gauge
