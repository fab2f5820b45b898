"""docker-compose.yml for real: an orchestrator and two workers (127.0.0.93 and 127.0.0.155,
host network), the workers running the simulations in sibling containers."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from dockertools import REPO, docker, labelled
from helpers.processes import free_port_on, wait_for

from partisim.sim import parse_params, simulate

pytestmark = pytest.mark.docker


def _compose_cmd() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if docker("compose", "version", check=False).returncode == 0:
        return ["docker", "compose"]
    raise AssertionError(
        "neither docker-compose nor the docker compose plugin is installed (.ci/docker.sh installs it)"
    )


@pytest.fixture(scope="module")
def stack(images, tmp_path_factory) -> Iterator[dict[str, str]]:
    """`compose up -d` with free ports and a config naming them; the URLs of the three services."""
    w1, w2, serve = free_port_on("127.0.0.93"), free_port_on("127.0.0.155"), free_port_on("127.0.0.1")
    config = tmp_path_factory.mktemp("compose") / "config_workers.json"
    config.write_text(
        json.dumps(
            {
                "workers": [
                    {"id": "worker-01", "ip": "127.0.0.93", "port": w1},
                    {"id": "worker-02", "ip": "127.0.0.155", "port": w2},
                ],
                "orchestrator": {"timeout": 5, "retry_attempts": 3, "max_concurrent_tasks": 4},
            }
        )
    )
    project = f"partisimtest{secrets.token_hex(3)}"
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PARTISIM_WORKER1_PORT": str(w1),
        "PARTISIM_WORKER2_PORT": str(w2),
        "PARTISIM_SERVE_PORT": str(serve),
        "PARTISIM_CONFIG": str(config),
    }
    compose = [*_compose_cmd(), "-f", str(REPO / "docker-compose.yml"), "-p", project]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*compose, *args], capture_output=True, text=True, env=env, timeout=300, check=False)

    up = run("up", "-d")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield {
            "orchestrator": f"http://127.0.0.1:{serve}",
            "worker-01": f"http://127.0.0.93:{w1}",
            "worker-02": f"http://127.0.0.155:{w2}",
        }
    finally:
        logs = run("logs", "--no-color")
        print(logs.stdout[-4000:])
        down = run("down", "-v", "--remove-orphans")
        assert down.returncode == 0, down.stdout + down.stderr


def test_compose_stack_runs_tasks_in_sibling_containers(stack) -> None:
    for worker in ("worker-01", "worker-02"):
        url = stack[worker] + "/status"
        status = wait_for(
            lambda url=url: httpx.get(url, timeout=5, trust_env=False).json(),
            90,
            f"{worker} to answer /status",
            interval=0.3,
        )
        assert (status["worker_id"], status["runner"], status["docker_available"]) == (worker, "docker", True)
    with httpx.Client(base_url=stack["orchestrator"], timeout=60, trust_env=False) as c:
        wait_for(lambda: c.get("/api/health").status_code == 200, 90, "the orchestrator to answer", interval=0.3)
        active = wait_for(
            lambda: (
                sorted(w["id"] for w in c.get("/api/workers").json()["workers"] if w["state"] == "active")
                == ["worker-01", "worker-02"]
            ),
            90,
            "both workers to be active",
            interval=0.3,
        )
        assert active
        params = {"NUM_PARTICULAS": 200, "NUM_PASOS": 500, "SEMILLA": 4}
        created = c.post(
            "/api/tasks", json=[{"benchmark": "cython", "params": params}, {"benchmark": "python", "params": params}]
        )
        assert created.status_code == 201, created.text
        results = []
        for task_id in created.json()["ids"]:
            path = f"/api/tasks/{task_id}"
            task = wait_for(
                lambda path=path: (
                    (t := c.get(path, params={"wait": 5}).json())["status"] in ("success", "failed", "cancelled") and t
                ),
                120,
                f"task {task_id}",
                interval=0.2,
            )
            assert task["status"] == "success", task
            results.append(task)
    expected = simulate(parse_params({"particles": 200, "steps": 500, "seed": 4}), "numpy").checksum
    for task in results:
        assert task["worker"] in ("worker-01", "worker-02")
        assert task["result"]["runner"] == "docker"
        assert task["result"]["checksum"] == expected
    wait_for(
        lambda: labelled("partisim.worker_id=worker-01") + labelled("partisim.worker_id=worker-02") == [],
        30,
        "the simulation containers to be removed",
    )
