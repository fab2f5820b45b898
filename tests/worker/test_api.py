"""Every endpoint of the worker API answers with its documented fields, against a real worker."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from datetime import datetime

import httpx
import pytest
from helpers.metrics import metric, samples, series
from helpers.processes import wait_for
from helpers.workers import TINY, RunningWorker

from partisim import __version__
from partisim.protocol import ExecuteResult as ExecuteOut
from partisim.protocol import HealthReport as HealthOut
from partisim.protocol import History as HistoryOut
from partisim.protocol import PingReply as PingOut
from partisim.protocol import TaskState as TaskOut
from partisim.protocol import WorkerStatus as StatusOut

USERS_BODY = {"benchmark": "benchmark.py", "params": {"NUM_PARTICULAS": 100, "NUM_PASOS": 500, "SEMILLA": 42}}


def cli_run(engine: str, particles: int, steps: int, seed: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "partisim",
            "run",
            "--engine",
            engine,
            "--particles",
            str(particles),
            "--steps",
            str(steps),
            "--seed",
            str(seed),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def test_ping_fields(client: httpx.Client) -> None:
    r = client.get("/ping")
    assert r.status_code == 200
    body = PingOut.model_validate(r.json())
    assert body.status == "active" and body.worker_id == "worker-127-0-0-1"
    datetime.fromisoformat(body.timestamp)
    assert body.worker_id in body.message


def test_status_fields(client: httpx.Client, worker: RunningWorker) -> None:
    r = client.get("/status")
    assert r.status_code == 200
    s = StatusOut.model_validate(r.json())
    assert s.worker_id == "worker-127-0-0-1"
    assert s.address == f"127.0.0.1:{worker.port}"
    assert s.status in ("ready", "busy") and s.runner == "process"
    assert s.capacity == 2 and 0 <= s.running <= 2
    assert set(s.engines) == {"python", "numpy", "cython"}
    assert s.docker_image == "particle-simulation:latest"
    assert s.cpu_count and s.uptime_s > 0
    assert s.limits["max_particles"] == 1_000_000


def test_health(client: httpx.Client) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    h = HealthOut.model_validate(r.json())
    assert h.status == "healthy" and h.checks["runner"]["ok"] is True


@pytest.mark.parametrize(
    "benchmark,engine", [("benchmark.py", "python"), ("benchmark_cython.py", "cython"), ("numpy", "numpy")]
)
def test_execute_matches_cli(client: httpx.Client, benchmark: str, engine: str) -> None:
    r = client.post("/execute", json={**USERS_BODY, "benchmark": benchmark})
    assert r.status_code == 200, r.text
    body = ExecuteOut.model_validate(r.json())
    cli = cli_run(engine, 100, 500, 42)
    assert body.engine == engine and body.benchmark == benchmark and body.runner == "process"
    assert (body.particle_collisions, body.wall_collisions, body.checksum) == (
        cli["particle_collisions"],
        cli["wall_collisions"],
        cli["checksum"],
    )
    assert body.params == cli["params"]
    assert body.execution_time >= body.simulation_time > 0


def test_a_coarse_step_is_warned_in_the_answer_and_the_record_never_in_the_result(client: httpx.Client) -> None:
    from partisim.sim import parse_params, simulate

    coarse = {"NUM_PARTICULAS": 100, "NUM_PASOS": 200, "SEMILLA": 7, "DT": 0.8}
    r = client.post("/execute", json={"benchmark": "cython", "params": coarse})
    assert r.status_code == 200, r.text
    body = ExecuteOut.model_validate(r.json())
    (text,) = body.warnings
    assert text.startswith("paso de tiempo grueso: con DT = 0,8") and "57 %" in text and "DT <= 0,1 " in text
    # advice only: the same numbers as a run here, bit for bit
    local = simulate(parse_params(coarse), "cython")
    assert (body.checksum, body.particle_collisions, body.wall_collisions) == (
        local.checksum,
        local.particle_collisions,
        local.wall_collisions,
    )
    stored = TaskOut.model_validate(client.get(f"/tasks/{body.task_id}").json())
    assert stored.result is not None and stored.result.warnings == [text]
    # the default step misses about 2 %: nothing to say
    plain = client.post("/execute", json={"benchmark": "cython", "params": {**coarse, "DT": 0.1}})
    assert plain.status_code == 200 and plain.json()["warnings"] == []


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def test_users_curl_commands_verbatim(worker: RunningWorker, fresh_worker) -> None:
    """The README's three curl checks as users type them: on 127.0.0.1:8080 itself when that port is
    free here, else on the shared worker's port (the only change)."""
    curl = shutil.which("curl")
    assert curl, "curl is needed for the users' own checks"
    base = "http://127.0.0.1:8080" if _port_free("127.0.0.1", 8080) else worker.url
    if base.endswith(":8080"):
        fresh_worker(port=8080)
    ping = subprocess.run([curl, "-s", f"{base}/ping"], capture_output=True, text=True, timeout=30)
    assert json.loads(ping.stdout)["status"] == "active"
    status = subprocess.run([curl, "-s", f"{base}/status"], capture_output=True, text=True, timeout=30)
    assert json.loads(status.stdout)["worker_id"] == "worker-127-0-0-1"
    data = '{"benchmark": "benchmark.py", "params": {"NUM_PARTICULAS": 100, "NUM_PASOS": 500, "SEMILLA": 42}}'
    run = subprocess.run(
        [curl, "-s", "-X", "POST", f"{base}/execute", "-H", "Content-Type: application/json", "-d", data],
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = json.loads(run.stdout)
    cli = cli_run("python", 100, 500, 42)
    assert result["status"] == "success"
    assert [result[k] for k in ("particle_collisions", "wall_collisions", "checksum")] == [
        cli[k] for k in ("particle_collisions", "wall_collisions", "checksum")
    ]


def test_metrics_prometheus(client: httpx.Client) -> None:
    client.post("/execute", json={"benchmark": "cython", "params": TINY}).raise_for_status()
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    found = samples(r.text)
    wid = "worker-127-0-0-1"
    assert (metric(found, "partisim_worker_tasks_total", worker_id=wid, status="success") or 0) >= 1
    assert metric(found, "partisim_worker_capacity", worker_id=wid) == 2
    assert metric(found, "partisim_worker_running", worker_id=wid) is not None
    assert metric(found, "partisim_worker_info", worker_id=wid, version=__version__, runner="process") == 1
    buckets = sorted(
        (float(labels["le"]), v) for labels, v in series(found, "partisim_worker_task_duration_seconds_bucket")
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] >= 1  # cumulative histogram
    assert metric(found, "partisim_worker_task_duration_seconds_count", worker_id=wid) == counts[-1]
    assert metric(found, "partisim_worker_uptime_seconds", worker_id=wid) is not None
    # OpenMetrics when the scraper asks for it (as Prometheus does)
    om = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text") and om.text.endswith("# EOF\n")


def test_history_newest_first_and_filter(client: httpx.Client) -> None:
    ids = [f"hist-{i}" for i in range(3)]
    for task_id in ids:
        client.post("/execute", json={"benchmark": "cython", "params": TINY, "task_id": task_id}).raise_for_status()
    r = client.get("/history", params={"limit": 3})
    assert r.status_code == 200
    h = HistoryOut.model_validate(r.json())
    assert [t.task_id for t in h.tasks] == ids[::-1] and h.count == 3
    assert all(t.status == "success" and t.code == 200 and t.result is not None for t in h.tasks)
    only_success = client.get("/history", params={"status": "success"}).json()["tasks"]
    assert only_success and all(t["status"] == "success" for t in only_success)
    cancelled = client.get("/history", params={"status": "cancelled", "limit": 5}).json()["tasks"]
    assert all(t["status"] == "cancelled" for t in cancelled)
    TaskOut.model_validate(only_success[0])


def test_docs_and_openapi(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    for path in ("/ping", "/health", "/status", "/execute", "/tasks", "/tasks/{task_id}", "/history", "/metrics"):
        assert path in spec["paths"], path
    body = spec["paths"]["/execute"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "benchmark.py" in body["properties"]["benchmark"]["enum"]
    assert "NUM_PARTICULAS" in body["properties"]["params"]["properties"]


def test_every_request_logged_with_task_id(client: httpx.Client, worker: RunningWorker) -> None:
    client.post("/execute", json={"benchmark": "cython", "params": TINY, "task_id": "logged-task-1"})
    # the line is written after the response is sent: wait for it rather than race it
    lines = wait_for(
        lambda: [ln for ln in worker.log().splitlines() if "tarea=logged-task-1" in ln], 10, "the request's log line"
    )
    line = lines[-1]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
    assert re.match(stamp + r" INFO \[worker-127-0-0-1\] POST /execute 200 [\d.]+ ms", line)
