"""`partisim serve --dask slurm` on a real SLURM: one serve for the module (its jobs come
and go with adaptive scaling), its jobs seen through `squeue`, one cancelled with
`scancel` in the middle of a batch. Everything on 127.0.0.1.

The tests run in this file's order and share the serve: the first one leaves the cluster
scaled down, the next ones need it to come back up.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers.processes import clean_env, wait_for
from helpers.serve import Serve

from partisim.protocol import Summary, TaskView
from partisim.serve.client import ServerClient
from partisim.sim import parse_params, simulate

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

#: the name of partisim's jobs in squeue
JOB_NAME = "partisim-dask"
#: python engine, ~0.3-0.5 s each on one core of a quiet machine: long enough to catch
#: a job running, short enough for a batch of a few seconds
SHORT = {"NUM_PARTICULAS": 120, "NUM_PASOS": 500}


@dataclass
class Slurmed:
    """The suite's serve, its folders and what the tests saw of its jobs."""

    serve: Serve
    config: Path
    workdir: Path
    logs: Path
    seen_jobs: set[str] = field(default_factory=set)
    scripts: dict[str, str] = field(default_factory=dict)  # job id -> the script SLURM holds
    done_at: float = 0.0  # time.monotonic() when the last watched batch was seen done


def squeue() -> dict[str, str]:
    """partisim's jobs in the queue: id -> state (RUNNING, PENDING…)."""
    done = subprocess.run(
        ["squeue", "-h", "--name", JOB_NAME, "-o", "%i %T"], capture_output=True, text=True, timeout=20, check=True
    )
    return dict(line.split() for line in done.stdout.strip().splitlines() if line.strip())


def batch_script(job: str) -> str | None:
    """The script SLURM holds for ``job`` (while SLURM still knows the job)."""
    done = subprocess.run(
        ["scontrol", "write", "batch_script", job, "-"], capture_output=True, text=True, timeout=20, check=False
    )
    return done.stdout if done.returncode == 0 and done.stdout.strip() else None


def _config(path: Path, logs: Path) -> Path:
    section = {
        "address": "slurm",
        "jobqueue": {
            "cores": 1,
            "processes": 1,
            "memory": "1GB",
            "walltime": "00:20:00",
            "minimum_jobs": 0,
            "maximum_jobs": 2,
            "scheduler_host": "127.0.0.1",
            "log_directory": str(logs),
        },
    }
    path.write_text(json.dumps({"dask": section, "orchestrator": {"retry_attempts": 3}}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def slurmed(slurm_node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slurmed]:
    base = tmp_path_factory.mktemp("slurm")
    workdir, logs = base / "servicio", base / "registros"
    workdir.mkdir()
    config = _config(base / "config.json", logs)
    serve = Serve(config, base / "queue.db", workdir=workdir)
    try:
        serve.start(timeout=90)
        yield Slurmed(serve, config, workdir, logs)
    finally:
        serve.terminate()
        serve.stop(timeout=60)
        # adaptive scaling cancels the jobs when serve's cluster closes; a job left over
        # (serve killed) must not hold the node for the next suite
        left = squeue()
        if left:
            subprocess.run(["scancel", *left], timeout=30, check=False)


def _watch(s: Slurmed, client: ServerClient, batch: str, timeout: float) -> Summary:
    """Poll the batch and squeue until the batch is done; record the jobs seen and the
    script of each running one."""

    def done() -> Summary | None:
        for job, state in squeue().items():
            s.seen_jobs.add(job)
            if state == "RUNNING" and job not in s.scripts:
                script = batch_script(job)
                if script is not None:
                    s.scripts[job] = script
        state = client.summary(batch=batch)
        if state.done:
            s.done_at = time.monotonic()
        return state if state.done else None

    result: Summary = wait_for(done, timeout, f"batch {batch} done", interval=0.3)
    return result


def _tasks(client: ServerClient, batch: str) -> dict[str, TaskView]:
    return {t.id: t for t in client.tasks(batch=batch, limit=10_000)}


def _model_exact(tasks: dict[str, TaskView]) -> None:
    for t in tasks.values():
        assert t.result is not None, t
        ref = simulate(parse_params(t.params), t.benchmark)
        got = (t.result.checksum, t.result.particle_collisions, t.result.wall_collisions)
        assert got == (ref.checksum, ref.particle_collisions, ref.wall_collisions), t.id


def test_a_sweep_completes_model_exact_on_slurm_jobs(slurmed: Slurmed) -> None:
    s = slurmed
    with ServerClient(s.serve.url) as client:
        specs = [
            {"benchmark": engine, "params": {**SHORT, "SEMILLA": seed}}
            for engine in ("python", "cython")
            for seed in range(6)
        ]
        answer = client.submit(specs)
        state = _watch(s, client, answer.batch, timeout=180)
        tasks = _tasks(client, answer.batch)
    assert state.success == 12 and state.failed == 0, state
    assert sorted(tasks) == sorted(answer.ids)
    assert all(t.status == "success" and t.result is not None and t.result.runner == "dask" for t in tasks.values())
    _model_exact(tasks)
    assert s.seen_jobs, "squeue never showed a job of partisim's"
    print(f"\n[slurm] barrido de 12: trabajos vistos en squeue {sorted(s.seen_jobs, key=int)}")
    # the Dask workers of the jobs announce 127.0.0.1, as the config's scheduler_host says
    assert all((t.worker or "").startswith("tcp://127.0.0.1:") for t in tasks.values()), tasks


def test_adaptive_scaling_goes_to_zero_jobs_and_back(slurmed: Slurmed) -> None:
    s = slurmed
    wait_for(lambda: not squeue(), 120, "partisim's jobs to leave squeue once the queue is empty")
    emptied = time.monotonic() - s.done_at
    before = set(s.seen_jobs)
    with ServerClient(s.serve.url) as client:
        answer = client.submit([{"benchmark": "cython", "params": {**SHORT, "SEMILLA": 100 + i}} for i in range(6)])
        state = _watch(s, client, answer.batch, timeout=180)
        tasks = _tasks(client, answer.batch)
    assert state.success == 6, state
    assert s.seen_jobs - before, "no new job was submitted for the second batch"
    new = sorted(s.seen_jobs - before, key=int)
    print(f"\n[slurm] squeue vacío a más tardar {emptied:.1f} s tras el lote; el lote nuevo tuvo los trabajos {new}")
    _model_exact(tasks)


def test_scancel_of_a_running_job_loses_and_duplicates_nothing(slurmed: Slurmed) -> None:
    s = slurmed
    with ServerClient(s.serve.url) as client:
        answer = client.submit([{"benchmark": "python", "params": {**SHORT, "SEMILLA": 200 + i}} for i in range(20)])
        wait_for(lambda: client.summary(batch=answer.batch).success >= 2, 180, "two results of the batch")
        running = [job for job, state in squeue().items() if state == "RUNNING"]
        assert running, "no job running mid-batch"
        victim = running[0]
        subprocess.run(["scancel", victim], timeout=30, check=True)
        wait_for(lambda: victim not in squeue(), 60, f"job {victim} gone from squeue")
        state = _watch(s, client, answer.batch, timeout=240)
        tasks = _tasks(client, answer.batch)
    assert state.success == 20 and state.failed == 0 and state.cancelled == 0, state
    assert sorted(tasks) == sorted(answer.ids)  # every task once
    assert all(t.status == "success" and t.duplicates == 0 for t in tasks.values())
    assert all(t.attempts <= 2 for t in tasks.values())
    again = sorted(t.id for t in tasks.values() if t.attempts == 2)
    print(f"\n[slurm] scancel {victim}: 20/20 una vez cada una, {len(again)} con un segundo intento")
    _model_exact(tasks)


def _normal(script: str) -> str:
    """Without what differs from job to job: the scheduler's port and the worker's name."""
    script = re.sub(r"tcp://127\.0\.0\.1:\d+", "tcp://127.0.0.1:PORT", script)
    return re.sub(r"--name \S+", "--name NAME", script).strip()


def test_job_script_prints_the_script_really_submitted(slurmed: Slurmed) -> None:
    s = slurmed
    assert s.scripts, "no running job's script was read from SLURM"
    printed = subprocess.run(
        [sys.executable, "-m", "partisim", "serve", "--config", str(s.config), "--job-script"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=s.workdir,
        env=clean_env(),
        check=False,
    )
    assert printed.returncode == 0, printed.stderr
    for job, script in s.scripts.items():
        assert _normal(printed.stdout) == _normal(script), (job, printed.stdout, script)
    assert "--host 127.0.0.1" in printed.stdout and "--dashboard-address 127.0.0.1:0" in printed.stdout


def test_job_logs_go_to_the_log_directory_not_serve_s_folder(slurmed: Slurmed) -> None:
    s = slurmed
    stray = sorted(p.name for p in s.workdir.iterdir() if p.name.startswith("slurm-"))
    assert stray == [], f"job output left in serve's folder: {stray}"
    logs = sorted(p.name for p in s.logs.iterdir())
    for job in s.seen_jobs:
        assert any(job in name for name in logs), (job, logs)
