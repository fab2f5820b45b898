"""serve with the users' own material: an ETAPA-6 task file through ``partisim submit``,
the inbox and ``POST /api/tasks`` (dispatched by priority, one worker of capacity 1);
a fleet of original-design workers (the stand-in tests/helpers/legacy_worker.py): a
task none of them can run fails at once and says why, one that waits for a worker that
is down says so, and the report says which runs it leaves out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from helpers.legacy import legacy_runs, start_legacy
from helpers.processes import HOST_A, HOST_B, free_port_on, wait_for
from helpers.workers import TINY
from queue_support import Cluster, run_cli, wait_batch

from partisim.protocol import TaskView
from partisim.serve.client import ServerClient

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tareas_etapa6.json"
#: the example's tasks in the order a queue with priorities dispatches them
BY_PRIORITY = [
    "cython_urgente",  # high = 10
    "cython_prioridad_8",
    "python_medio",  # medium = 5, first in the file
    "python_grande",  # 5, after it
    "cython_prioridad_2",
    "calentamiento_python",  # low = 1
]


def _dispatch_order(tasks: list[TaskView]) -> list[str | None]:
    # tiny tasks claimed in one round go in one batch, one after another on the worker:
    # within a round, the order in which they ran
    started = sorted(tasks, key=lambda t: (t.timings.started_at or 0.0, t.result.timestamp if t.result else ""))
    return [t.label for t in started]


def test_an_etapa6_file_runs_unchanged_by_priority_through_submit_inbox_and_api(cluster: Cluster, tmp_path: Path):
    worker = cluster.worker(HOST_A, "worker-01", capacity=1)
    inbox = tmp_path / "bandeja"
    serve = cluster.serve(
        cluster.config([("worker-01", worker.url)], max_concurrent_tasks=1), tmp_path / "q.db", inbox=inbox
    )
    serve.wait_workers(1, timeout=20)
    with ServerClient(serve.url) as client:
        # 1. partisim submit, the file as the users have it
        proc = run_cli("submit", str(EXAMPLE), "--server", serve.url, "--wait", "--timeout-wait", "120", cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        batch = next(line.split("lote ")[1].split()[0] for line in proc.stdout.splitlines() if "lote " in line)
        tasks = list(client.iter_tasks(batch=batch))
        assert {t.status for t in tasks} == {"success"} and len(tasks) == 6
        assert _dispatch_order(tasks) == BY_PRIORITY
        assert {t.label: t.priority for t in tasks}["cython_urgente"] == 10

        # 2. the inbox: the same file dropped in the folder
        inbox.mkdir(exist_ok=True)
        shutil.copy(EXAMPLE, inbox / "tareas_manuales.json")
        found = wait_for(
            lambda: next((b.batch for b in client.batches(limit=10) if b.batch != batch), None), 30, "inbox batch"
        )
        wait_batch(client, found, timeout=120)
        tasks = list(client.iter_tasks(batch=found))
        assert _dispatch_order(tasks) == BY_PRIORITY and {t.status for t in tasks} == {"success"}
        assert not list(inbox.glob("failed/*.json"))

        # 3. POST /api/tasks with the file's JSON as its body
        with serve.http() as http:
            answer = http.post("/api/tasks", content=EXAMPLE.read_bytes())
            assert answer.status_code == 201, answer.text
            api_batch = answer.json()["batch"]
            wait_batch(client, api_batch, timeout=120)
            tasks = list(client.iter_tasks(batch=api_batch))
            assert _dispatch_order(tasks) == BY_PRIORITY
            # the label is searchable: one per batch
            hits = http.get("/api/tasks", params={"label": "cython_urgente"}).json()["tasks"]
            assert len(hits) == 3 and {h["batch"] for h in hits} == {batch, found, api_batch}
            # a repeated label is refused, naming it
            data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
            data["tasks"][1]["task_id"] = data["tasks"][0]["task_id"]
            refused = http.post("/api/tasks", json=data)
            assert refused.status_code == 422 and "calentamiento_python" in refused.json()["error"]


def test_priority_from_the_cli_jumps_the_queue(cluster: Cluster, tmp_path: Path):
    worker = cluster.worker(HOST_A, "worker-01", capacity=1)
    serve = cluster.serve(
        cluster.config([("worker-01", worker.url)], max_concurrent_tasks=1), tmp_path / "q.db", wait_workers=1
    )
    slow = {"NUM_PARTICULAS": 300, "NUM_PASOS": 3000, "SEMILLA": 1}
    with ServerClient(serve.url) as client:
        first = client.submit([{"benchmark": "python", "params": slow, "label": "ocupa"}])
        wait_for(lambda: client.summary(batch=first.batch).running == 1, 30, "the first task to run")
        low = client.submit([{"benchmark": "cython", "params": TINY, "label": f"normal-{k}"} for k in range(3)])
        task_file = tmp_path / "urgente.json"
        task_file.write_text(json.dumps([{"benchmark": "cython", "params": TINY, "label": "urgente"}]), "utf-8")
        proc = run_cli("submit", str(task_file), "--priority", "high", "--server", serve.url, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        wait_batch(client, None, timeout=120)
        tasks = list(client.iter_tasks())
    order = _dispatch_order(tasks)
    assert order[0] == "ocupa" and order[1] == "urgente", order  # queued last, dispatched next
    assert order[2:] == ["normal-0", "normal-1", "normal-2"] and low.count == 3


def test_legacy_fleet_fails_what_it_cannot_run_at_once_and_runs_the_rest(cluster: Cluster, tmp_path: Path):
    proc, url = start_legacy(HOST_B, tmp_path)
    cluster.procs.append(proc)
    config = cluster.config([("legacy-01", url)])
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=1)
    wait_for(lambda: serve.summary()["workers_active"] == 1, 20, "legacy worker active")
    with ServerClient(serve.url) as client:
        wait_for(lambda: client.workers()[0].last_status is not None, 20, "its /status")
    tasks = tmp_path / "t.json"
    tasks.write_text(
        json.dumps(
            [
                {"benchmark": "numpy", "params": TINY},
                {"benchmark": "python", "params": {**TINY, "ANCHO_MUNDO": 1000.0}},
                {"benchmark": "cython", "params": TINY},
            ]
        ),
        "utf-8",
    )
    done = run_cli("submit", str(tasks), "--server", serve.url, "--wait", "--timeout-wait", "60", cwd=tmp_path)
    assert done.returncode == 1 and "2 tareas fallidas" in done.stdout, done.stdout  # finished, not timed out
    with ServerClient(serve.url) as client:
        by_engine = {t.benchmark: t for t in client.tasks()}
    numpy, width, cython = by_engine["numpy"], by_engine["python"], by_engine["cython"]
    assert numpy.status == "failed" and numpy.attempts == 0
    assert "ningún worker configurado puede ejecutar" in numpy.error and "numpy" in numpy.error
    assert width.status == "failed" and "ANCHO_MUNDO" in width.error and width.attempts == 0
    assert cython.status == "success" and not cython.verifiable
    assert [r["asked"] for r in legacy_runs(url)] == ["benchmark_cython.py"]  # nothing else was sent


def test_a_task_waiting_for_a_worker_that_is_down_says_so(cluster: Cluster, tmp_path: Path):
    proc, url = start_legacy(HOST_B, tmp_path)
    cluster.procs.append(proc)
    down = f"http://{HOST_A}:{free_port_on(HOST_A)}"  # a partisim worker configured, not running
    serve = cluster.serve(cluster.config([("legacy-01", url), ("worker-01", down)]), tmp_path / "q.db")
    wait_for(lambda: serve.summary()["workers_active"] == 1, 20, "legacy worker active")
    with ServerClient(serve.url) as client:
        wait_for(lambda: any(w.last_status for w in client.workers()), 20, "the legacy worker's /status")
        answer = client.submit([{"benchmark": "numpy", "params": TINY}])
        summary = wait_for(lambda: (s := client.summary(batch=answer.batch)).waiting and s, 20, "a waiting reason")
        assert summary.queued == 1 and "worker-01" in summary.waiting
        assert client.summary().waiting == summary.waiting
    waited = run_cli("wait", "--batch", answer.batch, "--server", serve.url, "--timeout-wait", "3", cwd=tmp_path)
    assert waited.returncode != 0 and "En espera" in waited.stdout and "worker-01" in waited.stdout
    with httpx.Client(base_url=serve.url, trust_env=False) as http:
        assert "queue-waiting" in http.get("/").text  # the dashboard's place for it


def test_report_on_a_mixed_fleet_says_which_runs_it_leaves_out(cluster: Cluster, tmp_path: Path):
    worker = cluster.worker(HOST_A, "worker-01", capacity=1)
    proc, url = start_legacy(HOST_B, tmp_path)
    cluster.procs.append(proc)
    serve = cluster.serve(cluster.config([("worker-01", worker.url), ("legacy-01", url)]), tmp_path / "q.db")
    serve.wait_workers(2, timeout=20)
    with ServerClient(serve.url) as client:
        answer = client.submit([{"benchmark": "cython", "params": {**TINY, "SEMILLA": k}} for k in range(6)])
        wait_batch(client, answer.batch, timeout=90)
        tasks = client.tasks(batch=answer.batch)
    foreign = sum(1 for t in tasks if not t.verifiable)
    assert 0 < foreign < 6, [t.worker for t in tasks]
    report = run_cli(
        "report", "--batch", answer.batch, "-o", str(tmp_path / "r.png"), "--server", serve.url, cwd=tmp_path
    )
    assert report.returncode == 0, report.stdout + report.stderr
    out = " ".join(report.stdout.split())
    runs = "1 ejecución no verificable queda" if foreign == 1 else f"{foreign} ejecuciones no verificables quedan"
    assert f"{runs} fuera de estas cifras" in out
