"""The worker's Docker runner against the real engine: results, limits, timeouts, cancellation."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from dockertools import SIM_IMAGE, docker, inspect, labelled
from helpers.processes import wait_for
from helpers.workers import RunningWorker, start_worker

pytestmark = pytest.mark.docker

WORKER_ID = "docker-host-test"
#: minutes of work for the python engine: only a timeout or a cancel ends it
ENDLESS = {"NUM_PARTICULAS": 2000, "NUM_PASOS": 5_000_000, "SEMILLA": 3}


@pytest.fixture(scope="module")
def docker_worker(images) -> Iterator[RunningWorker]:
    w = start_worker(
        "127.0.0.1",
        None,
        "--runner",
        "docker",
        "--capacity",
        "2",
        "--max-timeout",
        "120",
        "--docker-cpus",
        "1",
        "--docker-memory",
        "256m",
        "--docker-pids",
        "64",
        env={"WORKER_ID": WORKER_ID},
    )
    yield w
    w.stop()
    assert labelled(f"partisim.worker_id={WORKER_ID}") == [], "the worker left containers behind"


@pytest.fixture(scope="module")
def process_worker(images) -> Iterator[RunningWorker]:
    w = start_worker("127.0.0.1", None, "--runner", "process", "--capacity", "2")
    yield w
    w.stop()


@pytest.mark.parametrize("engine", ["cython", "numpy", "python"])
def test_execute_gives_the_process_runner_checksum(docker_worker, process_worker, engine) -> None:
    params = {"NUM_PARTICULAS": 120, "NUM_PASOS": 250, "SEMILLA": 11}
    with docker_worker.client(timeout=120) as d, process_worker.client(timeout=120) as p:
        in_docker = d.post("/execute", json={"benchmark": engine, "params": params, "timeout": 100})
        in_process = p.post("/execute", json={"benchmark": engine, "params": params, "timeout": 100})
    assert in_docker.status_code == 200, in_docker.text
    assert in_process.status_code == 200, in_process.text
    a, b = in_docker.json(), in_process.json()
    assert (a["runner"], b["runner"]) == ("docker", "process")
    assert a["checksum"] == b["checksum"]
    assert (a["particle_collisions"], a["wall_collisions"]) == (b["particle_collisions"], b["wall_collisions"])


def test_status_reports_the_docker_runner(docker_worker) -> None:
    with docker_worker.client() as c:
        status = c.get("/status").json()
    assert status["runner"] == "docker"
    assert status["docker_available"] is True and status["image_available"] is True
    assert status["docker_image"] == SIM_IMAGE


def _wait_running(task_id: str) -> str:
    names = wait_for(
        lambda: labelled(f"partisim.task_id={task_id}", all_states=False),
        60,
        f"a running container for task {task_id}",
        interval=0.1,
    )
    return names[0]


def test_container_runs_isolated_and_limited_and_a_cancel_removes_it(docker_worker) -> None:
    with docker_worker.client() as c:
        created = c.post(
            "/tasks", json={"benchmark": "python", "params": ENDLESS, "timeout": 110, "task_id": "limits-1"}
        )
        assert created.status_code == 202, created.text
        name = _wait_running("limits-1")
        info = inspect(name)
        host = info["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert host["AutoRemove"] is True
        assert host["NanoCpus"] == 1_000_000_000
        assert host["Memory"] == 256 * 1024 * 1024
        assert host["PidsLimit"] == 64
        assert host["CapDrop"] == ["ALL"] or host["CapDrop"] == ["all"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert info["Config"]["Image"] == SIM_IMAGE
        assert info["Config"]["Labels"]["partisim.worker_id"] == WORKER_ID
        # Nothing but loopback inside: no route out.
        links = docker(
            "exec", name, "python3", "-c", "import socket; print(sorted(n for _, n in socket.if_nameindex()))"
        ).stdout
        assert links.strip() == "['lo']"
        cancelled = c.delete("/tasks/limits-1")
        assert cancelled.status_code == 200, cancelled.text
    wait_for(lambda: labelled("partisim.task_id=limits-1") == [], 30, "the cancelled container to be removed")


def test_timed_out_container_is_killed_and_removed(docker_worker) -> None:
    answer: dict = {}

    def execute() -> None:
        with docker_worker.client(timeout=60) as c:
            r = c.post(
                "/execute", json={"benchmark": "python", "params": ENDLESS, "timeout": 4, "task_id": "timeout-1"}
            )
            answer.update(code=r.status_code, body=r.json())

    thread = threading.Thread(target=execute)
    thread.start()
    try:
        _wait_running("timeout-1")  # the container really ran before the deadline
    finally:
        thread.join(60)
    assert answer["code"] == 504, answer
    assert answer["body"]["status"] == "timeout"
    wait_for(lambda: labelled("partisim.task_id=timeout-1") == [], 30, "the timed-out container to be removed")
    assert docker("ps", "-a", "--filter", "name=partisim-timeout-1", "-q").stdout.strip() == ""
    with docker_worker.client() as c:
        # The worker serves on after the kill.
        assert (
            c.post(
                "/execute",
                json={"benchmark": "cython", "params": {"NUM_PARTICULAS": 10, "NUM_PASOS": 5}, "timeout": 60},
            ).status_code
            == 200
        )
