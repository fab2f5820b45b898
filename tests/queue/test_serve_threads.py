"""Tasks of several threads through ``partisim serve``: a real serve and a real worker.

The worker has 2 slots and no queue (``--queue-size 0``), so anything serve sends
beyond its free slots is refused with a 429 and counted in its /metrics: serve must
never do that, whatever mix of 1- and 2-thread tasks it has."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from helpers.metrics import series
from helpers.processes import HOST_A
from queue_support import Cluster

from partisim.serve.client import ServerClient
from partisim.sim import engine_threads

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        engine_threads("cython", 2) < 2, reason="the cython engine cannot use two threads here (one core, or no OpenMP)"
    ),
]

#: enough particles for a second thread (`sim.engines.MIN_PARTICLES_FOR_THREADS`)
BASE = {"NUM_PARTICULAS": 20_000, "RADIO_PARTICULA": 3.0, "ANCHO_MUNDO": 4000.0, "ALTO_MUNDO": 3000.0}


def _task(steps: int, seed: int, threads: int = 1) -> dict:
    task = {"benchmark": "cython", "params": {**BASE, "NUM_PASOS": steps, "SEMILLA": seed}}
    return {**task, "threads": threads} if threads > 1 else task


def _refused_429(worker_url: str) -> int:
    text = httpx.get(worker_url + "/metrics", timeout=10, trust_env=False).text
    refused = series(text, "partisim_worker_requests_refused_total")
    return int(sum(v for labels, v in refused if labels["code"] == "429"))


def test_serve_never_oversubscribes_a_worker_and_a_big_task_is_not_overtaken(cluster: Cluster, tmp_path: Path):
    worker = cluster.worker(HOST_A, "worker-a", capacity=2, extra=("--queue-size", "0"))
    config = cluster.config([("worker-a", worker.url)], max_concurrent_tasks=2)
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=1)
    tasks = [
        _task(150, 1),  # takes one slot first
        _task(30, 2, threads=2),  # then needs both: the tasks behind it must not take the freed one
        _task(10, 3),
        _task(10, 4),
        _task(10, 5),
        _task(30, 6, threads=2),
        _task(10, 7),
        _task(30, 2),  # the same simulation as the first big task, on one thread
    ]
    with ServerClient(serve.url) as client, httpx.Client(base_url=worker.url, trust_env=False, timeout=10) as w:
        wait_for_threads = time.monotonic() + 20  # the fleet learns the worker's threads from its /status
        while not {m.id: m for m in client.workers()}["worker-a"].last_status.engine_threads:
            assert time.monotonic() < wait_for_threads, "serve never saw the worker's /status"
            client.summary(wait=0.2)
        answer = client.submit(tasks)
        deadline = time.monotonic() + 120
        state = client.summary(batch=answer.batch)
        while not state.done:
            assert time.monotonic() < deadline, f"batch not done: {state}"
            status = w.get("/status").json()
            assert status["slots_used"] <= status["capacity"] == 2
            state = client.summary(batch=answer.batch, wait=0.1)
        views = {t.id: t for t in client.tasks(batch=answer.batch)}

    done = [views[i] for i in answer.ids]
    assert all(t.status == "success" for t in done), [(t.id, t.status, t.error) for t in done]
    assert _refused_429(worker.url) == 0  # serve never sent a task that did not fit
    assert all(t.attempts == 1 for t in done)
    big, twin = done[1], done[7]
    assert [t.threads for t in done] == [1, 2, 1, 1, 1, 2, 1, 1]
    for two in (big, done[5]):  # two threads, or one if the cores were taken when it started
        assert (two.result.threads, two.result.threads_reason) in ((2, "requested"), (1, "busy_machine"))
    assert twin.result.threads == 1
    assert big.result.checksum == twin.result.checksum
    assert big.result.particle_collisions == twin.result.particle_collisions
    # the 2-thread task was not overtaken by the 1-thread tasks queued behind it
    for later in done[2:5]:
        assert later.timings.started_at >= big.timings.started_at


def test_a_task_serve_sent_on_fewer_threads_says_what_it_asked_for(cluster: Cluster, tmp_path: Path) -> None:
    """The worker sees only the capped request; the stored result must still say the
    threads the task asked for, and why it got fewer (python: a one-thread engine;
    cython on a one-slot worker: the worker's capacity)."""
    worker = cluster.worker(HOST_A, "worker-a", capacity=1)
    config = cluster.config([("worker-a", worker.url)])
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=1)
    small = {"NUM_PARTICULAS": 50, "NUM_PASOS": 10}
    tasks = [
        {"benchmark": "python", "params": small, "threads": 2},
        {"benchmark": "cython", "params": {**BASE, "NUM_PASOS": 5}, "threads": 2},
        {"benchmark": "cython", "params": small},
    ]
    with ServerClient(serve.url) as client:
        answer = client.submit(tasks)
        deadline = time.monotonic() + 120
        while not client.summary(batch=answer.batch, wait=0.2).done:
            assert time.monotonic() < deadline
        views = {t.id: t for t in client.tasks(batch=answer.batch)}
    python, cython, plain = (views[i].result for i in answer.ids)
    assert python is not None and cython is not None and plain is not None
    assert (python.threads, python.threads_requested, python.threads_reason) == (1, 2, "single_threaded_engine")
    assert (cython.threads, cython.threads_requested, cython.threads_reason) == (1, 2, "worker_capacity")
    assert python.environment is not None and cython.environment is not None
    assert (python.environment.threads_requested, python.environment.threads_reason) == (2, "single_threaded_engine")
    assert (cython.environment.threads_requested, cython.environment.threads_reason) == (2, "worker_capacity")
    assert plain.threads_reason == "requested" and (plain.threads_requested or 1) == 1
