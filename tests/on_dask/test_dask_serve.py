"""`partisim serve --dask` end to end: real `dask scheduler` / `dask worker` processes
on 127.0.0.1 (or serve's own LocalCluster), real kills, a real SQLite queue."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from dask_support import ENDLESS, HALF_SECOND, by_id, wait_done
from helpers.processes import pid_gone, wait_for

from partisim.orchestrator.batches import submit_sweep
from partisim.protocol import TaskView
from partisim.serve.client import ServerClient
from partisim.sim import parse_params
from partisim.worker.runners import Job, ProcessRunner

pytestmark = pytest.mark.slow

TINY = {"NUM_PARTICULAS": 10, "NUM_PASOS": 5}


async def _process_runner_checksums(tasks: list[TaskView]) -> dict[str, tuple[str, int, int]]:
    """What the HTTP worker's process runner computes for the same tasks."""
    runner = ProcessRunner(capacity=2)
    await runner.start()
    try:
        out = {}
        for t in tasks:
            r = await runner.run(Job(t.id, t.benchmark, parse_params(t.params), timeout=120))
            out[t.id] = (r.checksum, r.particle_collisions, r.wall_collisions)
        return out
    finally:
        await runner.close()


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def test_a_sweep_runs_once_per_task_with_the_process_runners_checksums(dask_pair, procs) -> None:
    scheduler, workers = dask_pair
    serve = procs.serve(scheduler.address)
    addresses = {w.address for w in workers}
    with ServerClient(serve.url) as client:
        # asked for 2 threads: on Dask each simulation runs on one, and says so
        answer = submit_sweep(
            client, engines="python,numpy,cython", particles="10,30", steps="20", seeds="1-10", threads=2
        )
        assert answer.count == 60
        state = wait_done(client, answer.batch, timeout=240)
        assert state.success == 60 and state.failed == 0
        tasks = list(by_id(client, answer.batch).values())
        members = client.workers()
        completed = sum(m.completed for m in members)
    assert len(tasks) == 60
    assert all(t.status == "success" and t.attempts == 1 for t in tasks)
    assert {t.worker for t in tasks} == addresses  # both Dask workers, recorded by address
    assert all(t.result is not None and t.result.runner == "dask" for t in tasks)
    assert all(t.threads == 2 and t.result.threads == 1 and t.result.threads_requested == 2 for t in tasks)
    reference = asyncio.run(_process_runner_checksums(tasks))
    for t in tasks:
        assert t.result is not None
        assert (t.result.checksum, t.result.particle_collisions, t.result.wall_collisions) == reference[t.id], t.id

    # the dashboard's workers table: the Dask workers with threads, memory and a link
    assert {m.id for m in members} == addresses
    for m in members:
        assert m.kind == "dask" and m.state == "active" and m.threads == 1
        assert m.memory_bytes and m.memory_bytes > 0
        assert m.reported_id in ("w1", "w2")
        assert m.dashboard_url and m.dashboard_url.startswith("http://127.0.0.1:")
    assert completed == 60  # per worker, counted from the queue's records
    page = httpx.get(members[0].dashboard_url, timeout=30, trust_env=False)
    assert page.status_code == 200 and "Worker" in page.text


def test_a_serve_restart_mid_batch_loses_no_task(dask_pair, procs) -> None:
    scheduler, _ = dask_pair
    serve = procs.serve(scheduler.address)
    with ServerClient(serve.url) as client:
        answer = client.submit([{"benchmark": "python", "params": {**HALF_SECOND, "SEMILLA": s}} for s in range(16)])
        wait_for(lambda: client.summary(batch=answer.batch).success >= 2, 120, "two results")
        before = client.summary(batch=answer.batch)
    assert before.running > 0 and not before.done
    serve.kill()  # kill -9: its Dask client dies with it
    serve.start(timeout=90)
    with ServerClient(serve.url) as client:
        state = wait_done(client, answer.batch, timeout=240)
        tasks = by_id(client, answer.batch)
    assert state.success == 16 and state.failed == 0 and state.cancelled == 0
    assert sorted(tasks) == sorted(answer.ids)
    # the attempts left running by the dead serve went back without being counted
    assert all(t.status == "success" and t.attempts == 1 and t.result is not None for t in tasks.values())


def test_the_version_guard_refuses_a_worker_without_partisim(dask_pair, procs) -> None:
    scheduler, workers = dask_pair
    bare = procs.worker(scheduler, "sin-partisim", with_partisim=False)
    serve = procs.serve(scheduler.address)
    with ServerClient(serve.url) as client:
        members = {m.id: m for m in client.workers()}
        assert set(members) == {bare.address, *(w.address for w in workers)}
        refused = members[bare.address]
        assert refused.state == "inactive"
        assert refused.last_error is not None
        assert bare.address in refused.last_error and "no puede importar partisim" in refused.last_error
        assert "sin-partisim" in refused.last_error
        answer = client.submit([{"benchmark": "cython", "params": {**TINY, "SEMILLA": s}} for s in range(12)])
        state = wait_done(client, answer.batch, timeout=120)
        tasks = by_id(client, answer.batch).values()
    assert state.success == 12
    assert all(t.attempts == 1 and t.worker in {w.address for w in workers} for t in tasks)
    log = " ".join(serve.log().split())  # rich wraps long log lines
    assert f"el worker Dask {bare.address} (sin-partisim) no puede importar partisim" in log
    assert "no se usará" in log


def test_a_killed_worker_s_tasks_run_again_elsewhere_exactly_once(dask_pair, procs) -> None:
    scheduler, workers = dask_pair
    doomed = procs.worker(scheduler, "w3")
    serve = procs.serve(scheduler.address)
    with ServerClient(serve.url) as client:
        wait_for(lambda: len([m for m in client.workers() if m.state == "active"]) == 3, 30, "3 Dask workers")
        answer = client.submit([{"benchmark": "python", "params": {**HALF_SECOND, "SEMILLA": s}} for s in range(24)])
        # once w3 has finished one, the next ones are already on it
        wait_for(
            lambda: any(t.worker == doomed.address for t in client.tasks(batch=answer.batch, status="success")),
            120,
            "a result from w3",
        )
        doomed.kill()
        state = wait_done(client, answer.batch, timeout=240)
        tasks = by_id(client, answer.batch)
    assert state.success == 24 and state.failed == 0
    assert sorted(tasks) == sorted(answer.ids)  # one record per task, each with one result
    again = [t for t in tasks.values() if t.attempts > 1]
    assert again, "no attempt was lost with the killed worker"
    for t in again:
        assert t.attempts == 2 and t.worker in {w.address for w in workers}
    assert all(t.duplicates == 0 for t in tasks.values())  # Dask did not quietly run one again
    assert f"se perdió el worker Dask {doomed.address}" in " ".join(serve.log().split())


def test_local_cluster_timeout_and_cancel_free_the_workers(procs, tmp_path: Path) -> None:
    """``local:2`` from the config file, no scheduler anywhere; with no retries, a timeout
    fails the task at once; its computation (and a cancelled one's) must die, or the
    tiny tasks after them would wait for minutes."""
    serve = procs.serve(None, retry_attempts=0, address="local:2")
    tree = _descendants(serve.pid)
    with ServerClient(serve.url) as client:
        members = client.workers()
        assert len(members) == 2 and all(m.kind == "dask" and m.state == "active" for m in members)

        timed = client.submit(
            [{"benchmark": "python", "params": {**ENDLESS, "SEMILLA": s}, "timeout": 2} for s in range(2)]
        )
        wait_done(client, timed.batch, timeout=120)
        for t in client.tasks(batch=timed.batch):
            assert t.status == "failed" and "tiempo límite de 2 s" in (t.error or ""), t

        long = client.submit([{"benchmark": "python", "params": {**ENDLESS, "SEMILLA": s}} for s in range(2)])
        wait_for(lambda: sum(m.inflight for m in client.workers()) == 2, 60, "both workers computing")
        for task_id in long.ids:
            client.cancel(task_id)

        tiny = client.submit([{"benchmark": "numpy", "params": {**TINY, "SEMILLA": s}} for s in range(6)])
        state = wait_done(client, tiny.batch, timeout=60)
        assert state.success == 6
        assert {t.status for t in client.tasks(batch=long.batch)} == {"cancelled"}
        assert len({t.worker for t in client.tasks(batch=tiny.batch)}) == 2
    assert serve.stop() == 0
    wait_for(lambda: all(pid_gone(p) for p in tree), 30, "serve's LocalCluster processes to exit")
