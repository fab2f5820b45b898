"""``threads`` on the worker: the request field, the result, and slots (a task of k
threads occupies k of the worker's capacity). Real worker processes on loopback."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest
from helpers.processes import wait_for
from helpers.workers import ENDLESS, TINY

from partisim.errors import WorkerFailed
from partisim.sim import engine_threads
from partisim.sim.engines import MIN_PARTICLES_FOR_THREADS
from partisim.sim.params import parse_params
from partisim.worker.runners import DockerProbe, DockerRunner, Job

#: a fraction of a second of the cython engine, with enough particles for a second thread
#: (`sim.engines.MIN_PARTICLES_FOR_THREADS`; fewer run on one)
SMALL = {
    "NUM_PARTICULAS": MIN_PARTICLES_FOR_THREADS,
    "NUM_PASOS": 20,
    "SEMILLA": 5,
    "RADIO_PARTICULA": 3.0,
    "ANCHO_MUNDO": 4000.0,
    "ALTO_MUNDO": 3000.0,
}

needs_two = pytest.mark.skipif(
    engine_threads("cython", 2) < 2, reason="the cython engine cannot use two threads here (one core, or no OpenMP)"
)


def _state(client: httpx.Client, task_id: str) -> dict:
    return client.get(f"/tasks/{task_id}").json()


def _status(client: httpx.Client) -> dict:
    return client.get("/status").json()


@needs_two
def test_threads_round_trip_gives_the_single_thread_result(client: httpx.Client) -> None:
    one = client.post("/execute", json={"benchmark": "cython", "params": SMALL})
    two = client.post("/execute", json={"benchmark": "cython", "params": SMALL, "threads": 2})
    assert one.status_code == 200 and two.status_code == 200, two.text
    a, b = one.json(), two.json()
    assert (a["threads"], a["threads_requested"]) == (1, None)
    # two threads, or one when other threads held the cores as it started (a shared machine)
    assert (b["threads"], b["threads_requested"], b["threads_reason"]) in ((2, 2, "requested"), (1, 2, "busy_machine"))
    assert b["environment"]["threads_used"] == b["threads"] and b["environment"]["threads_requested"] == 2
    assert b["checksum"] == a["checksum"]
    assert (b["particle_collisions"], b["wall_collisions"]) == (a["particle_collisions"], a["wall_collisions"])
    record = _state(client, b["task_id"])
    assert (record["threads"], record["threads_requested"]) == (2, 2)


def test_threads_are_capped_by_the_engine_and_the_capacity(client: httpx.Client) -> None:
    """The shared worker has capacity 2: python uses one thread whatever is asked; cython at
    most min(capacity, what it can use here)."""
    status = _status(client)
    assert status["engine_threads"]["python"] == 1 and status["engine_threads"]["numpy"] == 1
    cython = status["engine_threads"]["cython"]
    assert cython == min(2, engine_threads("cython", 64))
    assert status["max_threads"] == cython and isinstance(status["openmp"], bool)
    py = client.post("/execute", json={"benchmark": "python", "params": TINY, "threads": 8}).json()
    assert (py["threads"], py["threads_requested"]) == (1, 8)
    assert _state(client, py["task_id"])["threads"] == 1
    cy = client.post("/execute", json={"benchmark": "cython", "params": TINY, "threads": 64}).json()
    # ten particles: one thread, and one slot, whatever was asked
    assert (cy["threads"], cy["threads_requested"], cy["threads_reason"]) == (1, 64, "small_work")
    assert _state(client, cy["task_id"])["threads"] == 1
    big = client.post("/execute", json={"benchmark": "cython", "params": SMALL, "threads": 64}).json()
    assert _state(client, big["task_id"])["threads"] == cython  # the slots it held
    if big["threads_reason"] != "busy_machine":  # else fewer threads: the cores were taken
        assert big["threads"] == cython
        assert big["threads_reason"] == ("worker_capacity" if engine_threads("cython", 64) > 2 else "machine_cores")


@pytest.mark.parametrize("bad", [0, -2, True, "2", 1.5, [2], {"n": 2}])
def test_bad_threads_is_a_422_naming_the_field(client: httpx.Client, bad: object) -> None:
    r = client.post("/execute", json={"benchmark": "cython", "params": TINY, "threads": bad})
    assert r.status_code == 422
    body = r.json()
    assert body["status"] == "invalid" and body["error"].startswith("threads (hilos) debe ser un número entero >= 1")


def _submit(client: httpx.Client, engine: str, params: dict, threads: int | None = None) -> httpx.Response:
    body: dict = {"benchmark": engine, "params": params, "task_id": f"th-{uuid.uuid4().hex[:10]}"}
    if threads is not None:
        body["threads"] = threads
    return client.post("/tasks", json=body)


@needs_two
def test_a_two_thread_task_waits_for_two_free_slots_first_in_first_out(fresh_worker) -> None:
    """Capacity 2, queue of 1: with one slot busy, a 2-thread task waits (and fills the
    queue, so a 1-thread task is refused although one slot is free: nothing overtakes it);
    once it runs it holds both slots."""
    w = fresh_worker("--capacity", "2", "--queue-size", "1")
    with w.client() as c:
        blocker = _submit(c, "python", ENDLESS).json()["task_id"]
        wait_for(lambda: _state(c, blocker)["status"] == "running", 30, "first task to run")
        big = _submit(c, "cython", {**SMALL, "NUM_PASOS": 500_000}, threads=2)  # minutes: enough for threads
        assert big.status_code == 202 and big.json()["status"] == "queued" and big.json()["threads"] == 2
        big_id = big.json()["task_id"]
        s = _status(c)
        assert (s["running"], s["slots_used"], s["queued"]) == (1, 1, 1)
        refused = _submit(c, "cython", TINY)
        assert refused.status_code == 429 and "capacidad 2" in refused.json()["error"]
        assert _state(c, big_id)["status"] == "queued"

        c.delete(f"/tasks/{blocker}")
        wait_for(lambda: _state(c, big_id)["status"] == "running", 30, "the 2-thread task to start")
        s = _status(c)
        assert (s["running"], s["slots_used"], s["status"]) == (1, 2, "busy")
        small = _submit(c, "cython", TINY)
        assert small.status_code == 202 and small.json()["status"] == "queued"  # no slot left
        full = _submit(c, "cython", SMALL, threads=2)
        assert full.status_code == 429 and "necesita 2 plazas" in full.json()["error"]

        c.delete(f"/tasks/{big_id}")
        wait_for(lambda: _state(c, small.json()["task_id"])["status"] == "success", 30, "the queued task to run")
        assert _state(c, big_id)["status"] == "cancelled"
        wait_for(lambda: _status(c)["slots_used"] == 0, 10, "slots freed")


def test_the_docker_runner_passes_threads_and_cpus() -> None:
    runner = DockerRunner(DockerProbe("docker", "partisim-sim:test"), cpus=1.0)
    params = parse_params(TINY)
    one = runner.command(Job("t1", "cython", params, 10.0), "c1")
    assert "--threads" not in one  # an image of an older partisim knows no --threads
    assert one[one.index("--cpus") + 1] == "1"
    two = runner.command(Job("t2", "cython", params, 10.0, threads=2), "c2")
    assert two[two.index("--threads") + 1] == "2" and two.index("--threads") > two.index("run")
    assert float(two[two.index("--cpus") + 1]) == min(2.0, float(os.cpu_count() or 1))


def test_an_image_older_than_threads_is_named_with_the_fix() -> None:
    runner = DockerRunner(DockerProbe("docker", "partisim-sim:vieja"))
    with pytest.raises(WorkerFailed) as err:
        runner._parse(2, "", "uso: partisim ...\npartisim: error: argumentos no reconocidos: --threads 2\n")
    assert "partisim-sim:vieja no conoce --threads" in err.value.message
    assert "partisim images build" in err.value.message
