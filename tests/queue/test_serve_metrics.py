"""/metrics of serve and of the worker, made with prometheus_client.

In-process: the scheduler against a real SQLite queue and the fake executor of
test_scheduler, read through the service's own registry. End to end (slow): a real
worker and a real serve with a token, scraped over HTTP like Prometheus does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import prometheus_client
import pytest
from helpers.metrics import metric as value
from helpers.metrics import samples
from helpers.processes import HOST_A, wait_for
from helpers.results import execute_result
from helpers.workers import ENDLESS, TINY
from queue_support import Cluster, wait_batch
from test_scheduler import FAST, SPEC, FakeExecutor, until

from partisim.errors import (
    AuthError,
    PartisimError,
    TaskNotStarted,
    TaskRejected,
    TaskTimedOut,
    WorkerFailed,
    WorkerUnavailable,
)
from partisim.serve.client import ServerClient
from partisim.serve.metrics import REASONS, ServeMetrics, reason_of
from partisim.serve.queue.store import TaskQueue
from partisim.serve.scheduler import Scheduler
from partisim.serve.web.app import create_app
from partisim.serve.web.context import ServeState
from partisim.worker.metrics import Metrics

TOKEN = "metricas-" + "x" * 24


@pytest.mark.parametrize(
    "error,reason",
    [
        (TaskRejected("ocupado", 429), "busy"),
        (TaskNotStarted("no llegó"), "not_started"),
        (AuthError("token incorrecto", 401), "auth"),
        (TaskRejected("parámetro inválido: tarea abc-123", 422), "rejected"),
        (TaskTimedOut("superó 3 s"), "timeout"),
        (WorkerUnavailable("conexión rechazada por 127.0.0.93"), "unavailable"),
        (WorkerFailed("HTTP 500", 500), "worker_error"),
        (PartisimError("algo raro"), "other"),
    ],
)
def test_a_reason_is_a_category_never_the_message(error: PartisimError, reason: str) -> None:
    assert reason_of(error) == reason and reason in REASONS


def test_the_scheduler_counts_attempts_releases_retries_failures_and_times(tmp_path: Path) -> None:
    queue = TaskQueue(tmp_path / "q.db", max_attempts=2)
    ex = FakeExecutor(slots=3)

    async def main() -> str:
        scheduler = Scheduler(queue, ex, policy=FAST, tick=0.01)
        state = ServeState(queue=queue, scheduler=scheduler)
        create_app(state)  # registers the scrape-time collector in the scheduler's registry
        await scheduler.start()
        try:
            _, (ok, retried, refused) = queue.enqueue([SPEC] * 3, batch="lote-metricas")
            scheduler.wake()
            await until(lambda: len(ex.launched) == 3)
            ex.answer(ok, execute_result("a"))
            ex.answer(retried, TaskRejected("ocupado", 429))  # put back, not counted
            ex.answer(refused, TaskRejected(f"parámetro inválido en {refused}", 422))  # fails at once
            await until(lambda: len(ex.launched) == 4)
            ex.answer(retried, WorkerFailed("HTTP 500", 500))  # retried
            await until(lambda: len(ex.launched) == 5)
            ex.answer(retried, execute_result("b"))
            await until(lambda: queue.counts()["success"] == 2 and queue.counts()["failed"] == 1)
            return prometheus_client.generate_latest(scheduler.metrics.registry).decode()
        finally:
            await scheduler.stop(grace=0)

    text = asyncio.run(main())
    found = samples(text)
    assert value(found, "partisim_serve_attempts_total", executor="http") == 5
    assert value(found, "partisim_serve_releases_total", reason="busy") == 1
    assert value(found, "partisim_serve_retries_total", reason="worker_error") == 1
    assert value(found, "partisim_serve_failures_total", reason="rejected") == 1
    assert sum(v for (n, _), v in found.items() if n == "partisim_serve_failures_total") == 1
    assert value(found, "partisim_serve_dispatch_latency_seconds_count", executor="http") == 5
    assert value(found, "partisim_serve_task_duration_seconds_count", executor="http", outcome="success") == 2
    assert value(found, "partisim_serve_task_duration_seconds_count", executor="http", outcome="error") == 3
    # read at scrape time from the tally, the members and the file
    assert value(found, "partisim_serve_tasks", status="success") == 2
    assert value(found, "partisim_serve_tasks", status="failed") == 1
    assert value(found, "partisim_serve_tasks", status="queued") == 0
    assert value(found, "partisim_serve_members", executor="http", state="active") == 1
    assert value(found, "partisim_serve_member_capacity", executor="http", member="fake") == 3
    assert value(found, "partisim_serve_member_inflight", executor="http", member="fake") == 0
    assert value(found, "partisim_serve_dashboard_clients") == 0
    assert (value(found, "partisim_serve_database_bytes") or 0) > 0
    # bounded labels: no task id, no batch, no error text anywhere in the exposition
    for task in queue.tasks():
        assert task.id not in text
    assert "lote-metricas" not in text and "inválido" not in text
    reasons = {dict(labels).get("reason") for (_, labels) in found} - {None}
    assert reasons <= set(REASONS)
    queue.close()


def test_each_service_and_worker_has_its_own_registry(tmp_path: Path) -> None:
    first, second = ServeMetrics("http"), ServeMetrics("dask")
    first.launched("t1", 1, ready_at=0.0, now=1.0)
    assert first.registry.get_sample_value("partisim_serve_attempts_total", {"executor": "http"}) == 1
    assert second.registry.get_sample_value("partisim_serve_attempts_total", {"executor": "dask"}) == 0
    a, b = Metrics(["success", "failed"], "worker-a"), Metrics(["success", "failed"], "worker-b")
    a.task_finished("success", 0.02)
    assert a.registry.get_sample_value("partisim_worker_tasks_total", {"worker_id": "worker-a", "status": "success"})
    assert (
        b.registry.get_sample_value("partisim_worker_tasks_total", {"worker_id": "worker-b", "status": "success"}) == 0
    )
    # two apps in one process, and nothing in the library's global registry
    for name in ("a", "b"):
        queue = TaskQueue(tmp_path / f"{name}.db")
        create_app(ServeState(queue=queue, scheduler=Scheduler(queue, FakeExecutor())))
        queue.close()
    assert not [m for m in prometheus_client.REGISTRY.collect() if m.name.startswith("partisim")]


# -- end to end: a real worker and a real serve, with a token --------------------------


@pytest.mark.slow
def test_serve_and_worker_metrics_over_http_with_the_token(cluster: Cluster, tmp_path: Path) -> None:
    worker = cluster.worker(HOST_A, "worker-a", capacity=2, env={"PARTISIM_TOKEN": TOKEN})
    config = cluster.config([("worker-a", worker.url)], worker_token=TOKEN, retry_attempts=0, max_concurrent_tasks=2)
    serve = cluster.serve(config, tmp_path / "q.db", token=TOKEN, wait_workers=1)

    for url in (serve.url, worker.url):
        anonymous = httpx.get(url + "/metrics", timeout=10, trust_env=False)
        assert anonymous.status_code == 401 and "partisim_" not in anonymous.text
        wrong = httpx.get(url + "/metrics", headers={"Authorization": "Bearer otro"}, timeout=10, trust_env=False)
        assert wrong.status_code == 401

    with ServerClient(serve.url, token=TOKEN) as client:
        tasks = [{"benchmark": "cython", "params": TINY}] * 4
        tasks.append({"benchmark": "python", "params": ENDLESS, "timeout": 1})  # killed: fails as timeout
        batch = client.submit(tasks).batch
        wait_batch(client, batch, 120)

    with serve.http() as http:
        # a dashboard page following the live feed is a live client while it listens
        with http.stream("GET", "/api/events") as events:
            assert events.status_code == 200
            lines = events.iter_lines()  # kept: dropping it would close the stream
            next(line for line in lines if line.startswith("data:"))
            with serve.http() as other:
                assert value(other.get("/metrics").text, "partisim_serve_dashboard_clients") == 1
        wait_for(lambda: value(http.get("/metrics").text, "partisim_serve_dashboard_clients") == 0, 30, "the page gone")
        text = http.get("/metrics").text
    found = samples(text)
    assert value(found, "partisim_serve_tasks", status="success") == 4
    assert value(found, "partisim_serve_tasks", status="failed") == 1
    assert value(found, "partisim_serve_failures_total", reason="timeout") == 1
    assert value(found, "partisim_serve_attempts_total", executor="http") == 5
    assert value(found, "partisim_serve_task_duration_seconds_count", executor="http", outcome="success") == 4
    assert value(found, "partisim_serve_members", executor="http", state="active") == 1
    assert value(found, "partisim_serve_member_inflight", executor="http", member="worker-a") == 0
    assert (value(found, "partisim_serve_database_bytes") or 0) > 0

    with worker.client() as http:
        worker_text = http.get("/metrics").text
    wfound = samples(worker_text)
    assert value(wfound, "partisim_worker_tasks_total", worker_id="worker-a", status="success") == 4
    assert value(wfound, "partisim_worker_tasks_total", worker_id="worker-a", status="timeout") == 1
    assert (value(wfound, "partisim_worker_task_duration_seconds_count", worker_id="worker-a") or 0) >= 4
