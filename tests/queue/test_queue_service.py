"""``partisim serve`` end to end: real workers, real serve, real SQLite file, real kills."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections import Counter
from pathlib import Path

import httpx
import pytest
from helpers.processes import HOST_A, HOST_B, wait_for
from helpers.workers import TINY
from queue_support import Cluster, successes_per_task, wait_batch, worker_history, worker_task_status

from partisim.errors import ServerError
from partisim.serve.client import ServerClient

#: ~0.2 s of the python engine: long enough to be caught mid-flight
MEDIUM = {"NUM_PARTICULAS": 200, "NUM_PASOS": 200}


def _tasks(params: dict, count: int, engine: str = "python") -> list[dict]:
    return [{"benchmark": engine, "params": {**params, "SEMILLA": seed}} for seed in range(count)]


def _db_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, status, worker, attempts, result FROM tasks").fetchall()


def test_200_tiny_tasks_over_two_workers_all_succeed_balanced(cluster: Cluster, pair, tmp_path: Path):
    a, b = pair
    config = cluster.config([("worker-a", a.url), ("worker-b", b.url)])
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=2)
    with ServerClient(serve.url) as client:
        answer = client.submit([{"benchmark": "python", "params": TINY, "repeat": 200}])
        assert answer.count == 200 and len(set(answer.ids)) == 200
        state = wait_batch(client, answer.batch, timeout=60)
        assert state.success == 200 and state.failed == 0
        tasks = client.tasks(batch=answer.batch)
        per_worker = Counter(t.worker for t in tasks)
        assert set(per_worker) == {"worker-a", "worker-b"}
        assert min(per_worker.values()) >= 70, per_worker  # balanced: neither worker starved
        assert all(t.attempts == 1 and t.result.checksum for t in tasks)
        workers = {w.id: w for w in client.workers()}
        assert workers["worker-a"].completed == per_worker["worker-a"]  # a fresh database
        assert workers["worker-a"].capacity == 2 and workers["worker-a"].state == "active"
        summary = client.summary()
        assert summary.finished_last_60s == 200 and summary.throughput_per_s > 0
    executions = successes_per_task(a, b)
    assert all(executions[i] == 1 for i in answer.ids)


def test_worker_killed_mid_batch_every_task_succeeds_once(cluster: Cluster, tmp_path: Path):
    a = cluster.worker(HOST_A, "worker-a", capacity=2)
    b = cluster.worker(HOST_B, "worker-b", capacity=2)
    config = cluster.config([("worker-a", a.url), ("worker-b", b.url)])
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=2)
    with ServerClient(serve.url) as client:
        answer = client.submit(_tasks(MEDIUM, 16))
        batch = answer.batch
        wait_for(
            lambda: (
                any(t.worker == "worker-a" for t in client.tasks(batch=batch, status="running"))
                and client.summary(batch=batch).success >= 2
            ),
            30,
            "tasks running on worker-a",
        )
        a.kill()
        state = wait_batch(client, batch, timeout=90)
        assert state.success == 16 and state.failed == 0, state
        tasks = client.tasks(batch=batch)
        retried = [t for t in tasks if t.attempts > 1]
        assert retried, "the tasks lost with worker-a should have been retried"
        assert all(t.worker == "worker-b" for t in retried)
        health = {w.id: w for w in client.workers()}
        wait_for(
            lambda: {w.id: w for w in client.workers()}["worker-a"].state == "inactive", 10, "worker-a marked inactive"
        )
        assert health["worker-b"].state == "active"
    rows = _db_rows(tmp_path / "q.db")
    assert len(rows) == 16 and all(r[1] == "success" and r[4] for r in rows)
    # worker-b never ran a task twice (worker-a's memory died with it)
    assert max(successes_per_task(b).values()) == 1
    # worker-a comes back on its address: active again, and it gets work again
    port = int(a.url.rsplit(":", 1)[1])
    cluster.worker(HOST_A, "worker-a", capacity=2, port=port)
    with ServerClient(serve.url) as client:
        wait_for(lambda: {w.id: w for w in client.workers()}["worker-a"].state == "active", 15, "worker-a active again")
        again = client.submit([{"benchmark": "python", "params": TINY, "repeat": 20}])
        wait_batch(client, again.batch, timeout=30)
        assert {t.worker for t in client.tasks(batch=again.batch)} == {"worker-a", "worker-b"}


def test_task_out_of_attempts_fails_with_its_last_error(cluster: Cluster, pair, tmp_path: Path):
    broken = cluster.proxy(pair[0], mode="flaky", rate=1.0)
    config = cluster.config([("worker-broken", broken.url)], retry_attempts=2)
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=1)
    with ServerClient(serve.url) as client:
        (task_id,) = client.submit({"benchmark": "python", "params": TINY}).ids
        task = client.task(task_id, wait=30)
    assert task.status == "failed" and task.attempts == 3  # first try + retry_attempts
    assert "sin intentos (3/3)" in task.error and "fallo inyectado" in task.error
    assert httpx.get(broken.url + "/proxy/stats", trust_env=False).json()["execute"] == 3


def test_serve_killed_mid_batch_and_restarted_loses_nothing(cluster: Cluster, pair, tmp_path: Path):
    a, b = pair
    config = cluster.config([("worker-a", a.url), ("worker-b", b.url)])
    db = tmp_path / "q.db"
    serve = cluster.serve(config, db, wait_workers=2)
    with ServerClient(serve.url) as client:
        answer = client.submit(_tasks(MEDIUM, 16))
        batch = answer.batch

        def half_done() -> bool:
            s = client.summary(batch=batch)
            return s.success >= 3 and s.running >= 2

        wait_for(half_done, 30, "a batch half done")
    serve.kill()
    rows = _db_rows(db)
    assert any(r[1] == "running" for r in rows), "the kill should leave tasks running in the database"
    again = cluster.serve(config, db, wait_workers=2)
    with ServerClient(again.url) as client:
        state = wait_batch(client, batch, timeout=90)
        assert state.success == 16 and state.failed == 0, state
        tasks = client.tasks(batch=batch)
    assert sorted(t.id for t in tasks) == sorted(answer.ids)
    executions = successes_per_task(a, b)
    duplicated = {i: n for i, n in executions.items() if i in answer.ids and n != 1}
    assert not duplicated, f"tasks executed more than once: {duplicated}"
    assert all(executions[i] == 1 for i in answer.ids)
    for t in tasks:  # the recorded result is the one of the worker that ran it
        assert t.result.worker_id == t.worker


#: ~10 ms of work, but above the tiny bound (`sim.cost`): each task its own /execute
SMALL = {"NUM_PARTICULAS": 10, "NUM_PASOS": 300}


@pytest.mark.parametrize(
    ("params", "count", "rate", "seed", "batched"),
    [(SMALL, 30, 0.3, 11, False), (TINY, 64, 0.3, 3, True)],  # seed 3: the first batch fails
    ids=["una-por-peticion", "en-lotes"],
)
def test_worker_answering_500_at_random_is_retried_to_success(
    cluster: Cluster, pair, tmp_path: Path, params: dict, count: int, rate: float, seed: int, batched: bool
):
    """Half the injected 500s come before the worker sees the request, half after it ran
    it (the answer is lost). Tiny tasks go in batches: a lost batch answer loses all of
    its tasks' answers at once, and each is retried with its own task_id."""
    real = pair[0]
    flaky = cluster.proxy(real, mode="flaky", rate=rate, seed=seed)
    config = cluster.config([("worker-flaky", flaky.url)], retry_attempts=12)
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=1)
    with ServerClient(serve.url) as client:
        answer = client.submit(_tasks(params, count))
        state = wait_batch(client, answer.batch, timeout=90)
        assert state.success == count, state
        tasks = client.tasks(batch=answer.batch)
    stats = httpx.get(flaky.url + "/proxy/stats", trust_env=False).json()
    assert stats["failed_before"] + stats["failed_after"] >= (3 if not batched else 1), stats
    assert sum(t.attempts for t in tasks) == stats["tasks"]
    assert (stats["tasks"] > stats["execute"]) == batched, stats  # several tasks per request only in batches
    assert any(t.attempts > 1 for t in tasks)
    # a lost answer was retried with the same task_id: the worker ran nothing twice
    executions = successes_per_task(real)
    assert all(executions[i] == 1 for i in answer.ids)


def test_422_fails_at_once_without_retry(cluster: Cluster, tmp_path: Path):
    worker = cluster.worker(HOST_A, "worker-a", capacity=1, extra=("--max-particles", "50"))
    config = cluster.config([("worker-a", worker.url)], retry_attempts=5)
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=1)
    with ServerClient(serve.url) as client:
        answer = client.submit(
            [
                {"benchmark": "python", "params": {"NUM_PARTICULAS": 100, "NUM_PASOS": 1}},
                {"benchmark": "python", "params": TINY},
            ]
        )
        wait_batch(client, answer.batch, timeout=30)
        bad, good = (client.task(i) for i in answer.ids)
    assert bad.status == "failed" and bad.attempts == 1
    assert "50" in bad.error and bad.result is None
    assert good.status == "success"


def test_cancel_queued_and_running_tasks(cluster: Cluster, tmp_path: Path):
    worker = cluster.worker(HOST_A, "worker-a", capacity=1)
    config = cluster.config([("worker-a", worker.url)], max_concurrent_tasks=1)
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=1)
    slow = {"NUM_PARTICULAS": 1000, "NUM_PASOS": 20000}  # minutes of python: must be cancelled
    with ServerClient(serve.url) as client:
        answer = client.submit(_tasks(slow, 2))
        first, second = answer.ids
        wait_for(lambda: worker_task_status(worker, first) == "running", 20, "first task running on the worker")
        assert client.task(second).status == "queued"
        assert client.cancel(second).previous == "queued"
        assert client.cancel(first).previous == "running"
        assert client.task(first).status == "cancelled"
        state = wait_batch(client, answer.batch, timeout=10)
        assert state.cancelled == 2
        for task_id, code in ((first, 409), (second, 409), ("t-nada", 404)):
            with pytest.raises(ServerError) as err:
                client.cancel(task_id)
            assert err.value.status_code == code
        # the worker was told: the running one was stopped there too, the queued one never ran
        wait_for(
            lambda: {i["task_id"]: i["status"] for i in worker_history(worker)}.get(first) == "cancelled",
            15,
            "worker-side cancel",
        )
        assert second not in {i["task_id"] for i in worker_history(worker)}
        # the slot is free again: a new task runs
        nxt = client.submit({"benchmark": "python", "params": TINY})
        assert client.task(nxt.ids[0], wait=20).status == "success"


def test_cancel_frees_the_slot_even_while_the_worker_hangs(cluster: Cluster, tmp_path: Path):
    worker = cluster.worker(HOST_A, "worker-a", capacity=1)
    config = cluster.config([("worker-a", worker.url)], max_concurrent_tasks=1)
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=1)
    slow = {"NUM_PARTICULAS": 1000, "NUM_PASOS": 20000}
    with ServerClient(serve.url) as client:
        (task_id,) = client.submit(_tasks(slow, 1)).ids
        # running on the worker itself, not only claimed by serve
        wait_for(lambda: worker_task_status(worker, task_id) == "running", 20, "task running on the worker")
        os.kill(worker.pid, signal.SIGSTOP)  # the worker hangs: no answer to anything
        try:
            assert client.cancel(task_id).previous == "running"
            # serve stops waiting for the frozen worker's answer (well inside the 5 s request timeout)
            wait_for(
                lambda: {w.id: w for w in client.workers()}["worker-a"].inflight == 0,
                3,
                "slot freed while the worker hangs",
            )
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        # once it thaws, the worker gets the cancel too and stops the computation
        wait_for(
            lambda: {i["task_id"]: i["status"] for i in worker_history(worker)}.get(task_id) == "cancelled",
            15,
            "worker-side cancel",
        )
        assert client.task(task_id).status == "cancelled"


def test_inbox_queues_good_file_and_rejects_malformed(cluster: Cluster, pair, tmp_path: Path):
    config = cluster.config([("worker-a", pair[0].url), ("worker-b", pair[1].url)])
    inbox = tmp_path / "bandeja"
    serve = cluster.serve(config, tmp_path / "q.db", inbox=inbox, wait_workers=1)
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "buenas.json").write_text(
        json.dumps({"tasks": [{"benchmark": "cython", "params": TINY, "repeat": 3}]}), encoding="utf-8"
    )
    (staging / "rotas.json").write_text('[{"benchmark": "python", ', encoding="utf-8")
    (staging / "invalidas.json").write_text(
        json.dumps([{"benchmark": "python", "params": {"NUM_PASOS": -1}}]), encoding="utf-8"
    )
    for name in ("buenas.json", "rotas.json", "invalidas.json"):
        (staging / name).replace(inbox / name)  # atomic appearance, as users should drop files
    wait_for(lambda: (inbox / "processed" / "buenas.json").exists(), 20, "good file processed")
    wait_for(lambda: (inbox / "failed" / "invalidas.json.error.txt").exists(), 20, "invalid file rejected")
    # a truncated file may be a file still being written: it is rejected once it settles
    wait_for(lambda: (inbox / "failed" / "rotas.json.error.txt").exists(), 20, "malformed file rejected")
    assert "JSON inválido" in (inbox / "failed" / "rotas.json.error.txt").read_text(encoding="utf-8")
    assert "NUM_PASOS" in (inbox / "failed" / "invalidas.json.error.txt").read_text(encoding="utf-8")
    assert not list(inbox.glob("*.json"))
    with ServerClient(serve.url) as client:
        batch = next(b.batch for b in client.batches() if b.batch.startswith("inbox-buenas-"))
        state = wait_batch(client, batch, timeout=30)
        assert state.success == 3 and state.total == 3


def test_sigterm_stops_serve_gracefully_letting_running_tasks_finish(cluster: Cluster, pair, tmp_path: Path):
    config = cluster.config([("worker-a", pair[0].url), ("worker-b", pair[1].url)], max_concurrent_tasks=1)
    db = tmp_path / "q.db"
    serve = cluster.serve(config, db, wait_workers=2)
    with ServerClient(serve.url) as client:
        answer = client.submit(_tasks(MEDIUM, 12))
        wait_for(lambda: client.summary(batch=answer.batch).running >= 1, 30, "tasks running")
        running = {t.id for t in client.tasks(batch=answer.batch, status="running")}
    serve.proc.send_signal(signal.SIGTERM)
    assert serve.proc.wait(timeout=30) == 0, serve.log()
    rows = {r[0]: r for r in _db_rows(db)}
    assert len(rows) == 12
    assert all(rows[i][1] == "success" for i in running)  # in-flight work was let finish
    assert {r[1] for r in rows.values()} <= {"success", "queued"}  # nothing failed or lost
    assert any(r[1] == "queued" for r in rows.values())  # and nothing new was dispatched


def test_a_task_the_worker_refused_while_serve_was_down_fails_at_once(cluster: Cluster, tmp_path: Path):
    """Regression: the worker publishes a failed task's HTTP code as ``code``. serve, when it
    resumes a task after a restart, must read it: a 4xx fails the task at once, no retry."""
    worker = cluster.worker(HOST_A, "worker-a", capacity=1)
    config = cluster.config([("worker-a", worker.url)], max_concurrent_tasks=1)
    db = tmp_path / "q.db"
    serve = cluster.serve(config, db, wait_workers=1)
    slow = {"NUM_PARTICULAS": 1000, "NUM_PASOS": 20000}
    with ServerClient(serve.url) as client:
        (task_id,) = client.submit(_tasks(slow, 1)).ids
    wait_for(lambda: worker_task_status(worker, task_id) == "running", 20, "task running on the worker")
    serve.kill()  # kill -9: the task stays "running" in the database
    # while serve is down, the task is cancelled on the worker itself: its record ends 409
    answer = httpx.delete(f"{worker.url}/tasks/{task_id}", timeout=10, trust_env=False)
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert httpx.get(f"{worker.url}/tasks/{task_id}", timeout=10, trust_env=False).json()["code"] == 409
    serve.start()
    with ServerClient(serve.url) as client:
        task = client.task(task_id, wait=20)
    assert task.status == "failed", task
    assert task.attempts == 1  # the 4xx rule: not retried
    assert "cancelada" in (task.error or "")
