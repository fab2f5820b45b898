"""A cancel that overtakes its task: the orchestrator cancels a task whose /execute is still
on its way; the worker answers 404 (it does not know the id yet) but must not run it later."""

from __future__ import annotations

import uuid

import httpx
from helpers.workers import TINY


def _status(client: httpx.Client) -> dict:
    return client.get("/status").json()


def test_task_cancelled_before_it_arrives_is_refused_when_it_arrives(client: httpx.Client) -> None:
    task_id = f"early-{uuid.uuid4().hex[:12]}"
    gone = client.delete(f"/tasks/{task_id}")
    assert gone.status_code == 404 and task_id in gone.json()["error"]
    done_before = _status(client)["completed"]
    for path in ("/execute", "/tasks"):
        late = client.post(path, json={"benchmark": "cython", "params": TINY, "task_id": task_id})
        assert late.status_code == 409, late.text
        assert "cancelada antes de llegar" in late.json()["error"]
    assert _status(client)["completed"] == done_before  # it never ran
    assert client.get(f"/tasks/{task_id}").status_code == 404
    # any other id runs as usual
    other = client.post(
        "/execute", json={"benchmark": "cython", "params": TINY, "task_id": f"late-{uuid.uuid4().hex[:12]}"}
    )
    assert other.status_code == 200 and other.json()["status"] == "success"
