"""Each task in its own process: timeouts really kill, crashes fail one task, capacity and 429."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import uuid

import httpx
import pytest
from helpers.metrics import metric
from helpers.processes import pid_gone, wait_for
from helpers.workers import ENDLESS, TINY


def _start_endless(client: httpx.Client, **extra) -> tuple[str, int]:
    task_id = f"endless-{uuid.uuid4().hex[:10]}"
    r = client.post("/tasks", json={"benchmark": "python", "params": ENDLESS, "task_id": task_id, **extra})
    assert r.status_code == 202, r.text
    rec = wait_for(
        lambda: (t := client.get(f"/tasks/{task_id}").json())["status"] == "running" and t["pid"] and t,
        30,
        "task to start",
    )
    return task_id, rec["pid"]


def test_timeout_kills_computation_while_others_are_served(client: httpx.Client) -> None:
    task_id = f"deadline-{uuid.uuid4().hex[:10]}"
    with cf.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(
            client.post, "/execute", json={"benchmark": "python", "params": ENDLESS, "task_id": task_id, "timeout": 2}
        )
        rec = wait_for(
            lambda: (t := client.get(f"/tasks/{task_id}").json())["status"] == "running" and t["pid"] and t,
            30,
            "task to start",
        )
        # served while the long task computes
        assert client.get("/ping").status_code == 200
        tiny = client.post("/execute", json={"benchmark": "cython", "params": TINY})
        assert tiny.status_code == 200
        assert not fut.done()
        r = fut.result(timeout=60)
    assert r.status_code == 504
    body = r.json()
    assert body["status"] == "timeout" and "2 s" in body["error"] and body["task_id"] == task_id
    wait_for(lambda: pid_gone(rec["pid"]), 10, "killed process to disappear")
    final = client.get(f"/tasks/{task_id}").json()
    assert final["status"] == "timeout" and final["code"] == 504
    assert final["execution_time"] >= 1.9  # killed at its deadline, not before
    assert client.post("/execute", json={"benchmark": "cython", "params": TINY}).status_code == 200


def test_timeout_capped_by_max_timeout(limited_worker) -> None:
    """--max-timeout 2 caps a request asking for an hour, 0.5 s is the floor; no timeout means the maximum."""
    with limited_worker.client() as c:
        asked = c.post("/execute", json={"benchmark": "cython", "params": TINY, "timeout": 3600})
        assert asked.status_code == 200
        assert c.get(f"/tasks/{asked.json()['task_id']}").json()["timeout"] == 2.0
        default = c.post("/execute", json={"benchmark": "cython", "params": TINY})
        assert c.get(f"/tasks/{default.json()['task_id']}").json()["timeout"] == 2.0
        short = c.post("/execute", json={"benchmark": "cython", "params": TINY, "timeout": 0.75})
        assert c.get(f"/tasks/{short.json()['task_id']}").json()["timeout"] == 0.75
        tiny = c.post("/execute", json={"benchmark": "cython", "params": TINY, "timeout": 5e-324})
        assert tiny.status_code == 200  # raised to the 0.5 s floor: no task starts faster than that
        assert c.get(f"/tasks/{tiny.json()['task_id']}").json()["timeout"] == 0.5


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL, signal.SIGABRT])
def test_crash_of_a_task_is_500_and_worker_goes_on(client: httpx.Client, sig: signal.Signals) -> None:
    """The task's process dies under it (segfault, hard exit, abort): that task fails, nothing else."""
    task_id = f"crash-{uuid.uuid4().hex[:10]}"
    with cf.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(client.post, "/execute", json={"benchmark": "python", "params": ENDLESS, "task_id": task_id})
        rec = wait_for(
            lambda: (t := client.get(f"/tasks/{task_id}").json())["status"] == "running" and t["pid"] and t,
            30,
            "task to start",
        )
        os.kill(rec["pid"], sig)
        r = fut.result(timeout=60)
    assert r.status_code == 500
    assert sig.name in r.json()["error"] and r.json()["status"] == "error"
    assert client.get(f"/tasks/{task_id}").json()["status"] == "failed"
    for _ in range(3):  # the pool was refilled: tasks keep running
        assert client.post("/execute", json={"benchmark": "cython", "params": TINY}).status_code == 200
    assert client.get("/health").json()["status"] == "healthy"


def test_memory_error_fails_only_that_task(fresh_worker) -> None:
    w = fresh_worker("--capacity", "1", "--task-memory-mb", "32")
    with w.client() as c:
        big = {"NUM_PARTICULAS": 1_000_000, "NUM_PASOS": 1, "RADIO_PARTICULA": 0.1}
        r = c.post("/execute", json={"benchmark": "cython", "params": big})
        assert r.status_code == 500 and "memoria" in r.json()["error"]
        ok = c.post("/execute", json={"benchmark": "cython", "params": {"NUM_PARTICULAS": 200, "NUM_PASOS": 10}})
        assert ok.status_code == 200


def test_capacity_queue_and_429(fresh_worker) -> None:
    w = fresh_worker("--capacity", "1", "--queue-size", "1")
    with w.client() as c:
        first, pid = _start_endless(c)
        second = c.post("/tasks", json={"benchmark": "cython", "params": TINY, "task_id": "queued-one"})
        assert second.status_code == 202 and second.json()["status"] == "queued"
        status = c.get("/status").json()
        assert (status["running"], status["queued"], status["status"]) == (1, 1, "busy")
        third = c.post("/execute", json={"benchmark": "cython", "params": TINY})
        assert third.status_code == 429
        assert third.json()["status"] == "busy" and "capacidad 1" in third.json()["error"]
        assert int(third.headers["retry-after"]) >= 1
        assert c.post("/tasks", json={"benchmark": "cython", "params": TINY}).status_code == 429
        # the refused request was not recorded: its id is free
        c.delete(f"/tasks/{first}")
        wait_for(lambda: c.get("/tasks/queued-one").json()["status"] == "success", 30, "queued task to run")
        assert pid_gone(pid) or wait_for(lambda: pid_gone(pid), 10, "process gone")
        assert c.post("/execute", json={"benchmark": "cython", "params": TINY}).status_code == 200
        refused = metric(
            c.get("/metrics").text, "partisim_worker_requests_refused_total", worker_id="worker-127-0-0-1", code="429"
        )
        assert refused == 2


def test_capacity_bounds_concurrency(fresh_worker) -> None:
    """Two slots: a third task waits in the queue until a slot frees, then runs."""
    w = fresh_worker("--capacity", "2", "--queue-size", "5")
    with w.client() as c:
        a, _ = _start_endless(c)
        b, _ = _start_endless(c)
        waiting = c.post("/tasks", json={"benchmark": "cython", "params": TINY}).json()
        assert waiting["status"] == "queued"
        assert c.get(f"/tasks/{waiting['task_id']}").json()["status"] == "queued"
        c.delete(f"/tasks/{a}")
        wait_for(lambda: c.get(f"/tasks/{waiting['task_id']}").json()["status"] == "success", 30, "queued task")
        assert c.get(f"/tasks/{b}").json()["status"] == "running"
        c.delete(f"/tasks/{b}")


def test_cancel_queued_task_never_runs(fresh_worker) -> None:
    w = fresh_worker("--capacity", "1")
    with w.client() as c:
        running, _ = _start_endless(c)
        queued = c.post("/tasks", json={"benchmark": "cython", "params": TINY, "task_id": "never"}).json()
        assert queued["status"] == "queued"
        r = c.delete("/tasks/never")
        assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["started_at"] is None
        c.delete(f"/tasks/{running}")
        assert c.get("/tasks/never").json()["status"] == "cancelled"
