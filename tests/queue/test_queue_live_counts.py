"""The counts serve keeps in memory (``/api/summary``, ``/api/workers``) against the
table itself, through a ``kill -9`` and a restart in the middle of a batch: real serve,
real workers, a real SQLite file read with a second connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from helpers.processes import HOST_A, HOST_B, wait_for
from helpers.workers import ENDLESS, TINY
from queue_support import Cluster, wait_batch

from partisim.serve.client import ServerClient


def table_counts(db: Path) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    with sqlite3.connect(db) as conn:
        statuses = dict(conn.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status").fetchall())
        per_worker: dict[str, list[int]] = {}
        for worker, status, n in conn.execute(
            "SELECT worker, status, COUNT(*) FROM tasks WHERE status IN ('success', 'failed') GROUP BY 1, 2"
        ):
            per_worker.setdefault(worker, [0, 0])[0 if status == "success" else 1] = n
    return statuses, {w: (s, f) for w, (s, f) in per_worker.items()}


def assert_counts_agree(client: ServerClient, db: Path) -> None:
    statuses, per_worker = table_counts(db)
    summary = client.summary()
    assert {s: getattr(summary, s) for s in ("queued", "running", "success", "failed", "cancelled")} == {
        s: statuses.get(s, 0) for s in ("queued", "running", "success", "failed", "cancelled")
    }
    assert summary.total == sum(statuses.values())
    shown = {w.id: (w.completed, w.failed) for w in client.workers()}
    assert {w: c for w, c in shown.items() if c != (0, 0)} == per_worker


@pytest.mark.slow
def test_counts_in_memory_equal_the_table_after_kill_9_and_restart(cluster: Cluster, tmp_path: Path) -> None:
    a = cluster.worker(HOST_A, "worker-a", capacity=2)
    b = cluster.worker(HOST_B, "worker-b", capacity=2)
    config = cluster.config([("worker-a", a.url), ("worker-b", b.url)], retry_attempts=1)
    db = tmp_path / "q.db"
    serve = cluster.serve(config, db, wait_workers=2)
    with ServerClient(serve.url) as client:
        tiny = client.submit([{"benchmark": "python", "params": TINY, "repeat": 300}])
        # two that time out on every attempt: failures, counted against a worker
        hopeless = client.submit([{"benchmark": "python", "params": ENDLESS, "timeout": 0.5, "repeat": 2}])
        doomed = client.submit([{"benchmark": "python", "params": TINY, "repeat": 5}])
        for task_id in doomed.ids[:3]:
            client.cancel(task_id)
        wait_for(lambda: client.summary().success >= 60, 60, "60 tasks done before the kill")
    serve.kill()  # SIGKILL in the middle of the batch: running tasks stay "running" in the file

    statuses, _ = table_counts(db)
    assert statuses.get("queued", 0) + statuses.get("running", 0) > 0  # really in the middle
    serve.start()
    with ServerClient(serve.url) as client:
        for batch in (tiny.batch, hopeless.batch, doomed.batch):
            wait_batch(client, batch, timeout=120)
        assert_counts_agree(client, db)
        summary = client.summary()
        assert summary.success == 302 and summary.failed == 2 and summary.cancelled == 3
        assert client.summary(batch=hopeless.batch).failed == 2
