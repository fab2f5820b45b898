"""The worker image: its HEALTHCHECK passes, and it runs tasks in sibling containers
through the host's Docker socket."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from dockertools import SIM_IMAGE, WORKER_IMAGE, docker, inspect, labelled
from helpers.processes import free_port_on, wait_for

from partisim.sim import parse_params, simulate

pytestmark = pytest.mark.docker

WORKER_ID = "sibling-test"


@pytest.fixture(scope="module")
def worker_container(images) -> Iterator[str]:
    """The worker image on the host network (127.0.0.1:PORT), with the Docker socket mounted."""
    port = free_port_on("127.0.0.1")
    name = f"partisim-test-worker-{secrets.token_hex(3)}"
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-e",
        "PARTISIM_HOST=127.0.0.1",
        "-e",
        f"PARTISIM_PORT={port}",
        "-e",
        "PARTISIM_RUNNER=docker",
        "-e",
        "PARTISIM_CAPACITY=2",
        "-e",
        f"WORKER_ID={WORKER_ID}",
        # The image's own check, polled faster than its 15 s so the test is quick.
        "--health-interval",
        "1s",
        "--health-start-period",
        "60s",
        WORKER_IMAGE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: httpx.get(url + "/ping", timeout=2, trust_env=False).status_code == 200,
            60,
            "the worker container to answer /ping",
            interval=0.2,
        )
        yield url
    finally:
        logs = docker("logs", name, check=False)
        docker("rm", "-f", name, check=False)
        print(logs.stdout[-3000:], logs.stderr[-3000:])


def test_image_healthcheck_passes(worker_container) -> None:
    names = docker("ps", "--format", "{{.Names}}").stdout.split()
    name = next(n for n in names if n.startswith("partisim-test-worker-"))
    check = inspect(WORKER_IMAGE)["Config"]["Healthcheck"]["Test"]
    assert "/health" in " ".join(check)
    status = wait_for(
        lambda: (
            inspect(name)["State"]["Health"]["Status"] in ("healthy", "unhealthy") and inspect(name)["State"]["Health"]
        ),
        60,
        "a health verdict",
        interval=0.5,
    )
    assert status["Status"] == "healthy", status["Log"][-3:]
    assert status["Log"][-1]["ExitCode"] == 0


def test_worker_container_runs_tasks_in_sibling_containers(worker_container) -> None:
    params = {"NUM_PARTICULAS": 400, "NUM_PASOS": 3000, "SEMILLA": 21}
    with httpx.Client(base_url=worker_container, timeout=60, trust_env=False) as c:
        status = c.get("/status").json()
        assert status["runner"] == "docker" and status["docker_available"] is True
        created = c.post(
            "/tasks", json={"benchmark": "python", "params": params, "timeout": 120, "task_id": "sibling-1"}
        )
        assert created.status_code == 202, created.text
        names = wait_for(
            lambda: labelled(f"partisim.worker_id={WORKER_ID}", all_states=False),
            60,
            "a sibling simulation container",
            interval=0.1,
        )
        sibling = inspect(names[0])
        assert sibling["Config"]["Image"] == SIM_IMAGE
        assert sibling["HostConfig"]["NetworkMode"] == "none"
        done = wait_for(
            lambda: (t := c.get("/tasks/sibling-1").json())["finished_at"] and t,
            120,
            "the task to finish",
            interval=0.2,
        )
    assert done["status"] == "success", done
    result = done["result"]
    assert result["runner"] == "docker"
    expected = simulate(parse_params({"particles": 400, "steps": 3000, "seed": 21}), "cython").checksum
    assert result["checksum"] == expected
    wait_for(lambda: labelled(f"partisim.worker_id={WORKER_ID}") == [], 30, "the sibling container to be removed")
