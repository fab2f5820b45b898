"""A retry after a read timeout can run a task on two workers: serve records it.

Worker A sits behind a proxy that holds its answers for a while (a worker slow to
answer: it has run the task, but serve hears nothing in time). serve gives up after
its short request bound, retries on worker B, and keeps asking A about the task: A
reports it ran it, so the task shows one duplicate run, in the API, the CLI's results
and the dashboard's task list."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from helpers.processes import HOST_A, HOST_B, wait_for
from helpers.workers import TINY
from queue_support import Cluster, run_cli, worker_history

from partisim.serve.client import ServerClient

HELD_S = 6.0  # how long the proxy holds worker A's answers
TASK_TIMEOUT_S = 1.5  # serve's bound: 1.5 + timeout 1 + answer_margin 0.5 = 3 s < HELD_S


@pytest.mark.slow
def test_a_task_run_on_two_workers_counts_one_duplicate(cluster: Cluster, tmp_path: Path) -> None:
    a = cluster.worker(HOST_A, "worker-a", capacity=2)
    b = cluster.worker(HOST_B, "worker-b", capacity=1)
    slow_a = cluster.proxy(a, mode="slow", delay=HELD_S, times=1)
    config = cluster.config([("worker-a", slow_a.url), ("worker-b", b.url)], timeout=1.0, answer_margin=0.5)
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=2)
    with ServerClient(serve.url) as client:
        # worker-a has the most free slots: the first attempt goes there
        (task_id,) = client.submit({"benchmark": "python", "params": TINY, "timeout": TASK_TIMEOUT_S}).ids
        task = client.task(task_id, wait=30)
        assert task.status == "success" and task.worker == "worker-b" and task.attempts == 2, task
        assert "sin respuesta" in (task.error or "") or task.error is None
        task = wait_for(lambda: (t := client.task(task_id)).duplicates == 1 and t, 15, "the duplicate run noted")
        assert task.result is not None and task.result.worker_id == "worker-b"
    # the workers' own records agree: two runs, one recorded plus one duplicate
    ran_on = [
        name
        for name, proc in (("worker-a", a), ("worker-b", b))
        if any(i["task_id"] == task_id and i["status"] == "success" for i in worker_history(proc))
    ]
    assert ran_on == ["worker-a", "worker-b"]
    assert httpx.get(slow_a.url + "/proxy/stats", trust_env=False).json()["delayed"] == 1

    rows = json.loads(run_cli("results", "--server", serve.url, "--format", "json", cwd=tmp_path).stdout)
    assert [r["duplicates"] for r in rows] == [1]
    table = run_cli("results", "--server", serve.url, "--format", "csv", cwd=tmp_path).stdout
    assert next(csv.DictReader(io.StringIO(table)))["duplicates"] == "1"
    shown = run_cli("results", "--server", serve.url, cwd=tmp_path).stdout
    assert "Duplicadas" in shown
    # the dashboard's task list is fed by the live snapshot
    with (
        httpx.Client(base_url=serve.url, trust_env=False, timeout=10) as web,
        web.stream("GET", "/api/events") as events,
    ):
        for line in events.iter_lines():
            if line.startswith("data:") and "recent" in line:
                recent = {t["id"]: t for t in json.loads(line[5:])["recent"]}
                assert recent[task_id]["duplicates"] == 1
                break
    assert "dup" in (Path(__file__).parents[2] / "src/partisim/serve/web/static/dashboard.js").read_text()


@pytest.mark.slow
def test_a_lost_answer_retried_on_the_same_worker_is_not_a_duplicate(cluster: Cluster, tmp_path: Path) -> None:
    """With one worker the retry goes back to it, which answers from its record by
    task id: one run, no duplicate."""
    a = cluster.worker(HOST_A, "worker-a", capacity=2)
    slow_a = cluster.proxy(a, mode="slow", delay=HELD_S, times=1)  # only the first answer is late
    config = cluster.config([("worker-a", slow_a.url)], timeout=1.0, answer_margin=0.5, retry_attempts=3)
    db = tmp_path / "q.db"
    serve = cluster.serve(config, db, wait_workers=1)
    with ServerClient(serve.url) as client:
        (task_id,) = client.submit({"benchmark": "python", "params": TINY, "timeout": TASK_TIMEOUT_S}).ids
        task = client.task(task_id, wait=30)
        assert task.status == "success" and task.attempts == 2 and task.worker == "worker-a"

        def watched() -> bool:  # serve heard from worker-a that the given-up attempt ran
            with sqlite3.connect(db) as conn:
                row = conn.execute("SELECT extra_runs FROM tasks WHERE id = ?", (task_id,)).fetchone()
            return bool(row and row[0] and "worker-a" in row[0])

        wait_for(watched, 15, "the watch of the first attempt")
        assert client.task(task_id).duplicates == 0
    runs = [i for i in worker_history(a) if i["task_id"] == task_id and i["status"] == "success"]
    assert len(runs) == 1
