"""What the users' own ETAPA-6 scripts send and read, and the exact contract: ETAPA-6
parameter names, /history's task_history and statistics, any printable task_id (also in
URL paths), GET /current, exact benchmark names, the timeout actually applied."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import httpx
import pytest
from helpers.processes import wait_for
from helpers.workers import ENDLESS, TINY, RunningWorker

from partisim.protocol import CurrentTasks, ExecuteResult, History, TaskState


def _strict(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(name)

    return json.loads(text, parse_constant=refuse)


def test_etapa6_parameter_names_run_unchanged(client: httpx.Client) -> None:
    theirs = client.post(
        "/execute",
        json={"benchmark": "benchmark_cython.py", "params": {"num_particles": 60, "num_steps": 30, "seed": 7}},
    )
    ours = client.post(
        "/execute",
        json={"benchmark": "benchmark_cython.py", "params": {"NUM_PARTICULAS": 60, "NUM_PASOS": 30, "SEMILLA": 7}},
    )
    assert theirs.status_code == ours.status_code == 200, theirs.text
    a, b = ExecuteResult.model_validate(theirs.json()), ExecuteResult.model_validate(ours.json())
    assert (a.checksum, a.particle_collisions, a.wall_collisions) == (
        b.checksum,
        b.particle_collisions,
        b.wall_collisions,
    )
    # echoed back under the API names, one spelling per parameter
    assert a.params == b.params and a.params["NUM_PARTICULAS"] == 60 and "num_particles" not in a.params
    queued = client.post("/tasks", json={"benchmark": "cython", "params": {"num_particles": 5, "num_steps": 2}})
    assert queued.status_code == 202 and queued.json()["params"]["NUM_PASOS"] == 2


def test_history_has_task_history_and_statistics(client: httpx.Client) -> None:
    for seed in (1, 2):
        r = client.post("/execute", json={"benchmark": "cython", "params": {**TINY, "SEMILLA": seed}})
        assert r.status_code == 200
    r = client.get("/history")
    assert r.status_code == 200
    raw = _strict(r.text)
    assert {"worker_id", "count", "tasks", "task_history", "statistics"} <= set(raw)
    history = History.model_validate(raw)
    assert history.task_history == history.tasks and history.count == len(history.tasks) >= 2
    stats = history.statistics
    assert stats.total_tasks == sum(stats.by_status.values()) >= history.count
    assert stats.completed_tasks == stats.by_status["success"] >= 2
    assert stats.failed_tasks == stats.by_status["failed"] + stats.by_status["timeout"]
    assert stats.min_execution_time <= stats.average_execution_time <= stats.max_execution_time
    assert 0 < stats.success_rate <= 1
    # the statistics describe the worker, whatever the page asked for
    one = History.model_validate(client.get("/history", params={"limit": 1, "status": "success"}).json())
    assert one.count == len(one.task_history) == 1 and one.statistics.total_tasks >= stats.total_tasks


IDS = [
    "tarea ñ 1",
    "con espacios",
    "a/b/c",
    "x?y#z&w=1",
    "100%",
    "日本語",
    "emoji 🚀",
    " espacio inicial",
    "ñ" * 128,
    "..",
    "-",
]


def test_any_printable_task_id_works_in_bodies_and_paths(client: httpx.Client) -> None:
    run = uuid.uuid4().hex[:6]
    for base in IDS:
        task_id = (base + run)[-128:] if len(base) >= 128 else base + run
        created = client.post("/tasks", json={"benchmark": "cython", "params": TINY, "task_id": task_id})
        assert created.status_code == 202, (task_id, created.text)
        path = "/tasks/" + quote(task_id, safe="")
        assert created.headers["location"] == path
        done = wait_for(
            lambda p=path: (t := client.get(p)).status_code == 200 and t.json()["status"] == "success" and t.json(),
            30,
            f"task {task_id!r}",
        )
        assert done["task_id"] == task_id
        assert (
            client.post("/tasks", json={"benchmark": "cython", "params": TINY, "task_id": task_id}).status_code == 200
        )  # known: never run twice
        gone = client.delete(path)
        assert gone.status_code == 409 and task_id in gone.json()["error"]
    # "/" may also travel unescaped: the whole rest of the path is the id
    assert client.get(f"/tasks/a/b/c{run}").json()["task_id"] == f"a/b/c{run}"


def test_current_lists_the_running_tasks(fresh_worker) -> None:
    w: RunningWorker = fresh_worker("--capacity", "1", "--queue-size", "2")
    with w.client() as c:
        empty = CurrentTasks.model_validate(c.get("/current").json())
        assert (empty.count, empty.tasks, empty.queued) == (0, [], 0)
        running_id = "larga-" + uuid.uuid4().hex[:6]
        started = c.post("/tasks", json={"benchmark": "python", "params": ENDLESS, "task_id": running_id})
        assert started.status_code == 202
        wait_for(lambda: c.get(f"/tasks/{running_id}").json()["status"] == "running", 30, "task to start")
        assert c.post("/tasks", json={"benchmark": "cython", "params": TINY, "task_id": "detras"}).status_code == 202
        now = CurrentTasks.model_validate(c.get("/current").json())
        assert now.count == 1 and now.queued == 1
        assert [t.task_id for t in now.tasks] == [running_id] and now.tasks[0].status == "running"
        assert now.tasks[0].pid
        c.delete(f"/tasks/{running_id}")
        wait_for(
            lambda: c.get("/current").json()["count"] == 0 and c.get("/tasks/detras").json()["status"] == "success",
            30,
            "queue to drain",
        )
    anonymous = httpx.get(w.url + "/current", trust_env=False)
    assert anonymous.status_code == 200  # no token set: open like the rest


def test_timeout_applied_is_reported(limited_worker: RunningWorker) -> None:
    """Chosen behaviour: a timeout above --max-timeout is not refused; the answer says the
    one applied (`timeout`) and the one asked for (`timeout_requested`)."""
    with limited_worker.client() as c:
        asked = c.post("/execute", json={"benchmark": "cython", "params": TINY, "timeout": 3600})
        assert asked.status_code == 200
        result = ExecuteResult.model_validate(asked.json())
        assert (result.timeout, result.timeout_requested) == (2.0, 3600.0)
        record = TaskState.model_validate(c.get(f"/tasks/{result.task_id}").json())
        assert (record.timeout, record.timeout_requested) == (2.0, 3600.0)
        default = ExecuteResult.model_validate(c.post("/execute", json={"benchmark": "cython", "params": TINY}).json())
        assert (default.timeout, default.timeout_requested) == (2.0, None)
        # killed at the applied deadline, and the 504 says why it was shorter than asked
        slow = c.post(
            "/execute",
            json={
                "benchmark": "python",
                "timeout": 3600,
                "params": {"NUM_PARTICULAS": 1000, "NUM_PASOS": 1000, "RADIO_PARTICULA": 1.0},
            },
        )
        assert slow.status_code == 504
        assert "2 s" in slow.json()["error"] and "se pidieron 3600 s" in slow.json()["error"]


@pytest.mark.parametrize("name", ["Cython", "CYTHON", " cython", "cython ", "Benchmark.py", "PYTHON"])
def test_benchmark_names_are_exact(client: httpx.Client, name: str) -> None:
    r = client.post("/execute", json={"benchmark": name, "params": TINY})
    assert r.status_code == 422 and "benchmark" in r.json()["error"] and "exactos" in r.json()["error"]
