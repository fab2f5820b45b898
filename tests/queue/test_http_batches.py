"""serve sends tiny tasks to partisim workers in batches (``POST /execute/batch``): many
per request, spread over the fleet, each recorded once with its own worker record; the
rest one per request, as before."""

from __future__ import annotations

from pathlib import Path

import httpx
from helpers.processes import HOST_A, HOST_B
from queue_support import Cluster, successes_per_task, wait_batch

from partisim.serve.client import ServerClient
from partisim.sim import parse_params, simulate

TINY = {"NUM_PARTICULAS": 12, "NUM_PASOS": 4}
#: ~10 ms of work but above the tiny bound (`sim.cost`): one request each
SMALL = {"NUM_PARTICULAS": 10, "NUM_PASOS": 300}


def _counter(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=10, trust_env=False).text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics of {url}")


def test_tiny_tasks_go_in_batches_over_both_workers_and_each_comes_back_once(cluster: Cluster, tmp_path: Path) -> None:
    a = cluster.worker(HOST_A, "worker-a", capacity=2)  # two batches at once there
    b = cluster.worker(HOST_B, "worker-b", capacity=1)
    serve = cluster.serve(cluster.config([("worker-a", a.url), ("worker-b", b.url)]), tmp_path / "q.db", wait_workers=2)
    specs = [{"benchmark": ("python", "cython", "numpy")[s % 3], "params": {**TINY, "SEMILLA": s}} for s in range(120)]
    specs += [{"benchmark": "python", "params": {**SMALL, "SEMILLA": s}} for s in range(3)]
    with ServerClient(serve.url) as client:
        answer = client.submit(specs)
        state = wait_batch(client, answer.batch, timeout=120)
        tasks = client.tasks(batch=answer.batch)
        members = client.workers()
    assert state.success == 123 and state.failed == 0, state
    assert [(m.id, m.inflight) for m in members] == [("worker-a", 0), ("worker-b", 0)]  # every slot given back
    assert sum(m.dispatched for m in members) == 123
    for t in tasks:
        assert t.attempts == 1 and t.duplicates == 0 and t.result is not None, t
        assert t.result.worker_id == t.worker and t.result.task_id == t.id
        ref = simulate(parse_params(t.params), t.benchmark)
        assert (t.result.checksum, t.result.particle_collisions) == (ref.checksum, ref.particle_collisions)
    # every tiny task, and only those, went in a batch; several to a request
    carried = {w.url: _counter(w.url, "partisim_worker_batched_tasks_total") for w in (a, b)}
    requests = sum(_counter(w.url, "partisim_worker_batches_total") for w in (a, b))
    assert sum(carried.values()) == 120, carried
    assert requests <= 120 / 4, requests
    assert all(n >= 20 for n in carried.values()), carried  # both workers took their share
    # the workers' own records: each task ran once, on the worker serve recorded
    runs = successes_per_task(a, b)
    assert all(runs[t.id] == 1 for t in tasks)
    # run_s is the queue's span (claim to answer: a batched task's is its batch's), never
    # less than the run it contains, and the API's schema says whose time it is
    assert all(t.timings.run_s is not None and t.timings.run_s >= t.result.execution_time for t in tasks)
    schema = httpx.get(serve.url + "/openapi.json", timeout=10, trust_env=False).json()
    run_s = schema["components"]["schemas"]["TaskTimings"]["properties"]["run_s"]["description"]
    assert "lote" in run_s and "execution_time" in run_s, run_s


def test_verification_of_tiny_tasks_runs_on_the_other_worker(cluster: Cluster, tmp_path: Path) -> None:
    a = cluster.worker(HOST_A, "worker-a", capacity=1)
    b = cluster.worker(HOST_B, "worker-b", capacity=1)
    serve = cluster.serve(cluster.config([("worker-a", a.url), ("worker-b", b.url)]), tmp_path / "q.db", wait_workers=2)
    with ServerClient(serve.url) as client:
        answer = client.submit([{"benchmark": "python", "params": {**TINY, "SEMILLA": s}} for s in range(40)])
        wait_batch(client, answer.batch, timeout=60)
        started = client.verify(40, batch=answer.batch)
        wait_batch(client, started.batch, timeout=60)
        originals = {t.id: t for t in client.tasks(batch=answer.batch)}
        checks = client.tasks(batch=started.batch)
    assert len(checks) == 40
    for check in checks:
        original = originals[check.verify_of or ""]
        assert check.status == "success" and check.worker != original.worker, (check.worker, original.worker)
        assert check.result is not None and original.result is not None
        assert check.result.checksum == original.result.checksum
