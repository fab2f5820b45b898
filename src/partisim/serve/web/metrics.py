"""``GET /metrics`` of ``partisim serve``: Prometheus exposition of the service.

The registry is the scheduler's (`partisim.serve.metrics.ServeMetrics`: attempts,
releases, retries, failures, dispatch latency, task duration). `install` adds to it a
collector that reads, when Prometheus scrapes, what serve already keeps in memory:
tasks by state (the queue's tally), the executor's members and their slots, the
dashboard's live clients and the size of the database file. A scrape costs no query
of the task table.

The route sits behind the same token as the rest of the app (``ServeAuth``): a scrape
config sends it as ``Authorization: Bearer``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from partisim import __version__
from partisim.serve.queue.task import STATUSES
from partisim.serve.web.context import ServeState, state_of
from partisim.serve.web.live import live_feed

__all__ = ["router", "install", "ServeCollector"]

router = APIRouter()


def _database_bytes(path: os.PathLike[str] | str) -> int:
    """The database's size on disk: the file and its write-ahead log."""
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += os.stat(f"{os.fspath(path)}{suffix}").st_size
        except OSError:
            continue
    return total


class ServeCollector:
    """Reads the service's state at scrape time."""

    def __init__(self, state: ServeState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        kind = state.executor.kind
        info = GaugeMetricFamily("partisim_serve_info", "The service.", labels=["version", "executor"])
        info.add_metric([__version__, kind], 1)
        yield info

        counts = state.queue.live_counts()
        tasks = GaugeMetricFamily("partisim_serve_tasks", "Tasks in the queue, by state.", labels=["status"])
        for status in STATUSES:
            tasks.add_metric([status], counts.get(status, 0))
        yield tasks

        members = state.executor.members()
        by_state = GaugeMetricFamily(
            "partisim_serve_members", "Members of the executor (workers), by state.", labels=["executor", "state"]
        )
        for name in ("active", "inactive"):
            by_state.add_metric([kind, name], sum(1 for m in members if m.state == name))
        yield by_state
        inflight = GaugeMetricFamily(
            "partisim_serve_member_inflight", "Attempts in flight on each member.", labels=["executor", "member"]
        )
        capacity = GaugeMetricFamily(
            "partisim_serve_member_capacity", "Slots of each member.", labels=["executor", "member"]
        )
        up = GaugeMetricFamily(
            "partisim_serve_member_up", "1 while the member is active, 0 otherwise.", labels=["executor", "member"]
        )
        for m in members:
            inflight.add_metric([kind, m.id], m.inflight)
            capacity.add_metric([kind, m.id], m.capacity)
            up.add_metric([kind, m.id], 1 if m.state == "active" else 0)
        yield from (inflight, capacity, up)
        total = GaugeMetricFamily(
            "partisim_serve_executor_inflight", "Attempts in flight on the executor.", labels=["executor"]
        )
        total.add_metric([kind], sum(m.inflight for m in members))
        yield total

        clients = GaugeMetricFamily("partisim_serve_dashboard_clients", "Dashboard pages following the live feed.")
        clients.add_metric([], live_feed(state).subscribers)
        yield clients
        size = GaugeMetricFamily(
            "partisim_serve_database_bytes", "Size of the SQLite database on disk (file and write-ahead log)."
        )
        size.add_metric([], _database_bytes(state.queue.path))
        yield size


def install(state: ServeState) -> None:
    """Register the scrape-time collector in the service's registry (once per state)."""
    if state.caches.get("metrics_collector") is None:
        collector = ServeCollector(state)
        state.scheduler.metrics.registry.register(collector)
        state.caches["metrics_collector"] = collector


@router.get("/metrics", summary="Métricas en formato Prometheus", response_class=Response)
async def metrics(request: Request) -> Response:
    state = state_of(request)
    encoder, content_type = choose_encoder(request.headers.get("accept") or "")
    return Response(encoder(state.scheduler.metrics.registry), media_type=content_type)
