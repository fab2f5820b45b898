"""The fault suite at the issue's size: a batch of 150 tasks survives ``kill -9`` of a
worker and then of ``serve`` itself, and every task ends with exactly one result."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import httpx
import pytest
from helpers.processes import HOST_A, HOST_B, wait_for
from queue_support import Cluster, successes_per_task, wait_batch, worker_history

from partisim.serve.client import ServerClient

BATCH = 150
#: ~0.1 s of the python engine: the batch lasts long enough for two kills
SIZE = {"NUM_PARTICULAS": 150, "NUM_PASOS": 150}


@pytest.mark.slow
def test_150_tasks_through_kill_9_of_a_worker_and_of_serve_end_exactly_once(cluster: Cluster, tmp_path: Path):
    a = cluster.worker(HOST_A, "worker-a", capacity=2)
    b = cluster.worker(HOST_B, "worker-b", capacity=2)
    config = cluster.config([("worker-a", a.url), ("worker-b", b.url)])
    db = tmp_path / "q.db"
    serve = cluster.serve(config, db, wait_workers=2)
    with ServerClient(serve.url) as client:
        answer = client.submit([{"benchmark": "python", "params": {**SIZE, "SEMILLA": k}} for k in range(BATCH)])
        assert answer.count == BATCH
        batch = answer.batch
        wait_for(
            lambda: (
                client.summary(batch=batch).success >= 20
                and any(t.worker == "worker-a" for t in client.tasks(batch=batch, status="running"))
            ),
            60,
            "tasks running on worker-a",
        )
        a.kill()  # kill -9 of a worker, tasks in flight on it
        a_again = cluster.worker(HOST_A, "worker-a", capacity=2, port=int(a.url.rsplit(":", 1)[1]))
        wait_for(lambda: client.summary(batch=batch).success >= 60, 90, "the batch past its first third")
    serve.kill()  # kill -9 of serve, tasks in flight on both workers
    with sqlite3.connect(db) as conn:
        statuses = Counter(s for (s,) in conn.execute("SELECT status FROM tasks"))
    assert statuses["running"] > 0 and statuses["success"] < BATCH, statuses
    again = cluster.serve(config, db, wait_workers=2)
    with ServerClient(again.url) as client:
        state = wait_batch(client, batch, timeout=240)
        tasks = client.tasks(batch=batch, limit=1000)
    assert state.success == BATCH and state.failed == 0 and state.total == BATCH, state
    assert sorted(t.id for t in tasks) == sorted(answer.ids)
    for t in tasks:  # one result each, from the worker the queue names, never counted twice
        assert t.result is not None and t.result.task_id == t.id and t.result.worker_id == t.worker
        assert t.duplicates == 0
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, status, result FROM tasks WHERE batch = ?", (batch,)).fetchall()
    assert len(rows) == BATCH and all(s == "success" and json.loads(r)["task_id"] == i for i, s, r in rows)
    # the workers alive at the end ran no task twice, neither each nor between them
    runs = successes_per_task(a_again, b)
    assert max(runs.values()) == 1
    ran_on_b = {x["task_id"] for x in worker_history(b) if x["status"] == "success"}
    assert {t.id for t in tasks if t.worker == "worker-b"} <= ran_on_b
    assert sum(1 for t in tasks if t.attempts > 1) > 0  # the killed worker's tasks were retried


#: tiny tasks (`sim.cost.tiny`: ~5 ms of work here): they travel 16 to a ``POST
#: /execute/batch``; fewer than a worker's /history shows (1000), so it can be checked whole
TINY_SIZE = {"NUM_PARTICULAS": 40, "NUM_PASOS": 25}
TINY_BATCH = 900


@pytest.mark.slow
def test_tiny_tasks_in_batches_through_kill_9_of_a_worker_and_of_serve_end_exactly_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The same faults while whole batches of tiny tasks are in flight: a killed worker's
    batch is retried task by task elsewhere; after serve's kill -9 the new serve follows
    every task of the batches it finds running by its own id."""
    a = cluster.worker(HOST_A, "worker-a", capacity=2)
    b = cluster.worker(HOST_B, "worker-b", capacity=2)
    config = cluster.config([("worker-a", a.url), ("worker-b", b.url)])
    db = tmp_path / "q.db"
    serve = cluster.serve(config, db, wait_workers=2)
    specs = [{"benchmark": "python", "params": {**TINY_SIZE, "SEMILLA": k}} for k in range(TINY_BATCH)]
    with ServerClient(serve.url) as client:
        answer = client.submit(specs)
        batch = answer.batch
        wait_for(lambda: client.summary(batch=batch).success >= 60, 60, "the first batches done")
        a.kill()  # kill -9 with batches in flight on it (or about to be)
        wait_for(lambda: client.summary(batch=batch).success >= 300, 90, "the batch past 300")
    serve.kill()  # kill -9 of serve, batches in flight on worker-b
    with sqlite3.connect(db) as conn:
        statuses = Counter(s for (s,) in conn.execute("SELECT status FROM tasks"))
    assert statuses["running"] > 0 and statuses["success"] < TINY_BATCH, statuses  # batches in flight
    a_again = cluster.worker(HOST_A, "worker-a", capacity=2, port=int(a.url.rsplit(":", 1)[1]))
    again = cluster.serve(config, db, wait_workers=2)
    with ServerClient(again.url) as client:
        state = wait_batch(client, batch, timeout=240)
        tasks = client.tasks(batch=batch, limit=TINY_BATCH)
    assert state.success == TINY_BATCH and state.failed == 0, state
    assert sorted(t.id for t in tasks) == sorted(answer.ids)
    for t in tasks:
        assert t.result is not None and t.result.task_id == t.id and t.result.worker_id == t.worker
    # worker-b lived through it all: it ran each of its tasks once, and the queue took
    # the result of every task it names as worker-b from worker-b's own record
    runs_b = Counter(x["task_id"] for x in worker_history(b) if x["status"] == "success")
    assert max(runs_b.values()) == 1
    assert {t.id for t in tasks if t.worker == "worker-b"} <= set(runs_b)
    assert max(successes_per_task(a_again, b).values()) == 1
    carried = sum(
        float(line.rsplit(" ", 1)[1])
        for line in httpx.get(b.url + "/metrics", timeout=10, trust_env=False).text.splitlines()
        if line.startswith("partisim_worker_batched_tasks_total{")
    )
    assert carried >= len(runs_b) > 0  # worker-b's tasks came in batches
