"""Measured with the real thing (issue 20 §5): two processes that burn CPU beside a real
worker make its two-thread run "medido con la máquina ocupada", with the threads it used;
a one-thread run on an idle machine is not flagged.

The machine may be shared (other test runs): the idle half can only be asserted when the
machine is idle when it starts, and says so with a skip naming the load it found."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator

import pytest
from helpers.processes import wait_for
from helpers.workers import RunningWorker, start_worker

from partisim.sim import SimResult, engine_threads, parse_params, simulate
from partisim.sim.engines import MIN_PARTICLES_FOR_THREADS, WAIT_POLICY
from partisim.sim.environment import CONTENDED_LABEL, load_1min, runnable_threads, usable_cpus
from partisim.worker.runners import Job, OnStarted, Runner
from partisim.worker.tasks import TaskManager

#: about a second of the cython engine on one thread: many readings of the machine
RUN = {
    "NUM_PARTICULAS": MIN_PARTICLES_FOR_THREADS,
    "NUM_PASOS": 300,
    "SEMILLA": 11,
    "RADIO_PARTICULA": 3.0,
    "ANCHO_MUNDO": 4000.0,
    "ALTO_MUNDO": 3000.0,
}
BURN = "while True:\n    pass\n"


def _cpu_ticks(pid: int) -> int:
    """User + system clock ticks a process has used (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.fixture
def burners() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two processes spinning on the CPU, each seen to have run before the test goes on."""
    procs = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(2)]
    try:
        for p in procs:
            wait_for(lambda p=p: _cpu_ticks(p.pid) >= 5, 30, f"burner {p.pid} to use the CPU")
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(10)


@pytest.fixture(scope="module")
def worker() -> Iterator[RunningWorker]:
    """One worker for the module: every test leaves it idle (no task running or queued)."""
    w = start_worker("127.0.0.1", None, "--capacity", "2")
    yield w
    w.stop()


def _execute(w: RunningWorker, threads: int) -> dict:
    with w.client(timeout=300) as c:
        r = c.post("/execute", json={"benchmark": "cython", "params": RUN, "threads": threads})
    assert r.status_code == 200, r.text
    body: dict = r.json()
    return body


pytestmark = pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="needs /proc/loadavg (Linux)")


def test_a_two_thread_run_beside_two_burners_is_flagged_with_its_threads(worker, burners) -> None:
    if engine_threads("cython", 2) < 2:
        pytest.skip("el motor cython no puede usar dos hilos aquí (un núcleo, o sin OpenMP)")
    body = _execute(worker, 2)
    env = body["environment"]
    # the burners hold the cores: the run sees no free core at its start and uses one thread
    assert (body["threads"], body["threads_requested"], body["threads_reason"]) in (
        (1, 2, "busy_machine"),
        (2, 2, "requested"),  # a scheduler may let both threads start before the burners are back
    )
    assert (env["threads_used"], env["threads_requested"], env["threads_reason"]) == (
        body["threads"],
        2,
        body["threads_reason"],
    )
    assert env["contended"] is True, env
    # two burners and two threads on the cores this worker may use: the machine was full
    assert "runnable" in env["contended_by"] or "load" in env["contended_by"], env
    assert env["runnable_max"] >= 2 and env["cores"] == usable_cpus()
    machine = env["machine"]
    assert machine["machine_id"] == env["machine_id"] and machine["runner"] == "process"
    assert machine["engine_build"]["wait_policy"] == WAIT_POLICY == "spin-30000"
    assert "-ffp-contract=off" in machine["engine_build"]["flags"]
    with worker.client() as c:  # the record says the same, and /status carries the static part
        assert c.get(f"/tasks/{body['task_id']}").json()["result"]["environment"]["contended"] is True
        assert c.get("/status").json()["environment"]["machine_id"] == env["machine_id"]


def _machine_busy(cores: int) -> str | None:
    """Why the machine is not idle now (load average or runnable threads above the cores), or None."""
    load = load_1min()
    readings = []
    for _ in range(20):  # a median of readings: one instant can catch a passing process
        found = runnable_threads()
        if found is not None:
            readings.append(max(0, found - 1))  # less this reader
    runnable = statistics.median(readings) if readings else 0
    if load is not None and load > cores:
        return f"la carga media de 1 minuto es {load:.2f}, más que los {cores} núcleos"
    if runnable > cores - 1:  # the run itself adds one thread
        return f"hay {runnable:g} hilos listos para ejecutarse, y el motor añadirá uno en {cores} núcleos"
    return None


def test_a_one_thread_run_on_an_idle_machine_is_not_flagged(worker) -> None:
    cores = usable_cpus()
    busy = _machine_busy(cores)
    if busy:
        pytest.skip(f"no se puede afirmar la mitad «máquina en reposo»: {busy} (otras pruebas la ocupan)")
    body = _execute(worker, 1)
    env = body["environment"]
    assert (body["threads"], env["threads_used"], env["threads_reason"]) == (1, 1, "requested")
    assert env["contended"] is False and env["contended_by"] == [], (CONTENDED_LABEL, env)
    assert env["other_tasks"] == 0 and env["worker_threads_max"] == 1


def test_a_run_beside_another_task_of_the_worker_is_flagged(worker) -> None:
    """Another slot of the same worker active during the run: contended, whatever the load."""
    with worker.client(timeout=300) as c:
        other = c.post(
            "/tasks", json={"benchmark": "python", "params": {"NUM_PARTICULAS": 2000, "NUM_PASOS": 5_000_000}}
        )
        assert other.status_code == 202, other.text
        other_id = other.json()["task_id"]
        wait_for(lambda: c.get(f"/tasks/{other_id}").json()["status"] == "running", 30, "the other task to run")
        try:
            r = c.post("/execute", json={"benchmark": "cython", "params": {**RUN, "NUM_PASOS": 5}})
        finally:
            c.delete(f"/tasks/{other_id}")
            # the worker is shared by the module: idle again before the next test
            wait_for(lambda: c.get("/current").json()["count"] == 0, 30, "the other task to end")
    env = r.json()["environment"]
    assert env["contended"] is True and "other_task" in env["contended_by"] and env["other_tasks"] == 1, env


def test_the_engine_plans_one_thread_when_burners_hold_every_core(burners) -> None:
    """Two spinning processes are always ready to run: no core is free, so a run asking for
    two threads plans one, and says why (`thread_plan`, `free_cpus`)."""
    from partisim.sim.engines import thread_plan
    from partisim.sim.environment import free_cpus

    if engine_threads("cython", 2) < 2:
        pytest.skip("el motor cython no puede usar dos hilos aquí (un núcleo, o sin OpenMP)")
    if usable_cpus() > 2:
        pytest.skip(f"{usable_cpus()} CPU usables: dos procesos de carga no las ocupan todas")
    assert free_cpus() == 0
    plan = thread_plan("cython", 2, MIN_PARTICLES_FOR_THREADS)
    assert (plan.used, plan.reason) == (1, "busy_machine")


class _Simulates(Runner):
    """Runs the real simulation in this process (the reason is the engine's own)."""

    name = "process"

    async def run(self, job: Job, on_started: OnStarted | None = None) -> SimResult:
        return simulate(job.params, job.engine, job.threads)


def test_a_run_the_worker_capped_says_so_even_when_the_machine_is_busy_afterwards(burners) -> None:
    """Capacity 1 caps a two-thread request at one thread: the engine ran what it was given
    (``requested``), so the reason is the worker's (``worker_capacity``), never the load
    the machine happens to have when the result is written (``busy_machine``)."""
    if engine_threads("cython", 2) < 2:
        pytest.skip("el motor cython no puede usar dos hilos aquí (un núcleo, o sin OpenMP)")
    if usable_cpus() > 2:
        pytest.skip(f"{usable_cpus()} CPU usables: dos procesos de carga no las ocupan todas")

    async def scenario() -> None:
        manager = TaskManager(_Simulates(), worker_id="w", capacity=1, queue_size=1, engine_threads={"cython": 2})
        params = parse_params({**RUN, "NUM_PASOS": 1})
        rec, _ = await manager.submit(benchmark="cython", engine="cython", params=params, timeout=30, threads=2)
        await manager.wait(rec)
        assert rec.status == "success" and rec.result is not None, rec.error
        assert (rec.result.threads, rec.result.threads_requested) == (1, 2)
        assert rec.result.threads_reason == "worker_capacity"

    asyncio.run(scenario())


def _run_json(*extra: str) -> dict:
    argv = [sys.executable, "-m", "partisim", "run", "--json", "-e", "cython", *extra]
    for key, flag in (("NUM_PARTICULAS", "-n"), ("NUM_PASOS", "-s"), ("SEMILLA", "--seed")):
        argv += [flag, str(RUN[key])]
    argv += ["--radius", "3", "--width", "4000", "--height", "3000"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    body: dict = json.loads(done.stdout)
    return body


def test_partisim_run_records_where_and_how_it_measured() -> None:
    """`partisim run --json` carries the same environment a worker records."""
    body = _run_json("--threads", "2")
    env = body["environment"]
    machine = env["machine"]
    assert machine["usable_cpus"] == usable_cpus() and machine["runner"] == "process"
    assert machine["engine_build"]["wait_policy"] == WAIT_POLICY and machine["python"] == sys.version.split()[0]
    assert (env["threads_requested"], env["threads_used"]) == (2, body["threads"])
    assert env["threads_reason"] == body["threads_reason"] and env["load_start"] is not None
    assert env["runnable_median"] is not None  # it read the machine while the run went on


def test_partisim_run_beside_two_burners_is_flagged_busy(burners) -> None:
    if usable_cpus() > 2:
        pytest.skip(f"{usable_cpus()} CPU usables: dos procesos de carga no las ocupan todas")
    env = _run_json()["environment"]
    assert env["contended"] is True and "runnable" in env["contended_by"], env
    text = subprocess.run(
        [sys.executable, "-m", "partisim", "run", "-e", "cython", "-n", "5000", "-s", "400"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert text.returncode == 0 and CONTENDED_LABEL in " ".join(text.stderr.split()), text.stderr
