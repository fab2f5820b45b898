"""task_id idempotency, asynchronous tasks (POST/GET/DELETE /tasks) and cancellation."""

from __future__ import annotations

import uuid

import httpx
from helpers.processes import pid_gone, wait_for
from helpers.workers import ENDLESS, TINY


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _successes(client: httpx.Client) -> int:
    return client.get("/status").json()["completed"]


def test_same_task_id_is_never_run_twice(client: httpx.Client) -> None:
    task_id = _uid("idem")
    body = {"benchmark": "benchmark_cython.py", "params": {"NUM_PARTICULAS": 50, "NUM_PASOS": 20}, "task_id": task_id}
    first = client.post("/execute", json=body)
    assert first.status_code == 200
    done = _successes(client)
    again = client.post("/execute", json=body)
    assert again.status_code == 200 and again.json()["replayed"] is True  # the stored answer, same timestamp
    assert {**again.json(), "replayed": False, "first_run_at": None} == first.json()
    assert first.json()["replayed"] is False and "x-partisim-replayed" not in first.headers
    # the same work named differently (alias and engine name) is still the same task
    same = client.post(
        "/execute", json={**body, "benchmark": "cython", "params": {"particles": 50, "steps": 20, "SEMILLA": 42}}
    )
    assert same.status_code == 200 and same.json()["timestamp"] == first.json()["timestamp"]
    via_tasks = client.post("/tasks", json=body)
    assert via_tasks.status_code == 200 and via_tasks.json()["result"] == first.json()
    assert via_tasks.json()["replayed"] is True and via_tasks.headers["x-partisim-replayed"]
    assert _successes(client) == done
    history = client.get("/history").json()["tasks"]
    assert sum(1 for t in history if t["task_id"] == task_id) == 1


def test_same_task_id_other_params_is_409(client: httpx.Client) -> None:
    task_id = _uid("conflict")
    client.post("/execute", json={"benchmark": "cython", "params": TINY, "task_id": task_id}).raise_for_status()
    r = client.post("/execute", json={"benchmark": "cython", "params": {**TINY, "SEMILLA": 2}, "task_id": task_id})
    assert r.status_code == 409 and task_id in r.json()["error"] and r.json()["status"] == "conflict"
    r = client.post("/tasks", json={"benchmark": "python", "params": TINY, "task_id": task_id})
    assert r.status_code == 409


def test_async_task_lifecycle(client: httpx.Client) -> None:
    task_id = _uid("async")
    r = client.post(
        "/tasks", json={"benchmark": "numpy", "params": {"NUM_PARTICULAS": 100, "NUM_PASOS": 50}, "task_id": task_id}
    )
    assert r.status_code == 202 and r.headers["location"] == f"/tasks/{task_id}"
    assert r.json()["status"] in ("queued", "running", "success")
    final = wait_for(
        lambda: (t := client.get(f"/tasks/{task_id}").json())["status"] == "success" and t, 30, "async task to finish"
    )
    assert final["code"] == 200 and final["result"]["checksum"] and final["result"]["task_id"] == task_id
    direct = client.post(
        "/execute", json={"benchmark": "numpy", "params": {"NUM_PARTICULAS": 100, "NUM_PASOS": 50}, "task_id": task_id}
    )
    # answered from the record of the first run, and marked as such (a header too)
    replay = direct.json()
    assert replay.pop("replayed") is True and replay.pop("first_run_at") == final["finished_at"]
    assert {k: v for k, v in final["result"].items() if k not in ("replayed", "first_run_at")} == replay
    assert direct.headers["x-partisim-replayed"] == final["finished_at"]
    r = client.delete(f"/tasks/{task_id}")
    assert r.status_code == 409 and "ya terminó (éxito)" in r.json()["error"]


def test_generated_task_id(client: httpx.Client) -> None:
    r = client.post("/tasks", json={"benchmark": "cython", "params": TINY})
    assert r.status_code == 202
    task_id = r.json()["task_id"]
    assert len(task_id) >= 16
    wait_for(lambda: client.get(f"/tasks/{task_id}").json()["status"] == "success", 30, "task")


def test_cancel_running_task_kills_its_process(client: httpx.Client) -> None:
    task_id = _uid("cancel")
    r = client.post("/tasks", json={"benchmark": "python", "params": ENDLESS, "task_id": task_id})
    assert r.status_code == 202
    running = wait_for(
        lambda: (t := client.get(f"/tasks/{task_id}").json())["status"] == "running" and t["pid"] and t,
        30,
        "task to run",
    )
    pid = running["pid"]
    assert not pid_gone(pid)
    r = client.delete(f"/tasks/{task_id}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["code"] == 409
    wait_for(lambda: pid_gone(pid), 10, "the task's process to be gone")
    # an /execute with the same id does not run it again: it reports the cancellation
    again = client.post("/execute", json={"benchmark": "python", "params": ENDLESS, "task_id": task_id})
    assert again.status_code == 409 and again.json()["task_id"] == task_id
    assert again.json()["status"] == "cancelled" and "cancelada" in again.json()["error"]
    assert client.post("/execute", json={"benchmark": "cython", "params": TINY}).status_code == 200
