"""Docker stopping under a running worker: 503 and /status say so; Docker back, served again.

The real dockerd is stopped (SIGTERM) and started again with its own command line,
so the engine is the same one the rest of the suite uses.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dockertools import docker
from helpers.processes import wait_for
from helpers.workers import RunningWorker, start_worker

pytestmark = pytest.mark.docker

SMALL = {"benchmark": "cython", "params": {"NUM_PARTICULAS": 60, "NUM_PASOS": 40, "SEMILLA": 5}, "timeout": 60}


def _dockerd() -> tuple[int, list[str]]:
    pid_file = Path("/var/run/docker.pid")
    assert pid_file.exists(), "no /var/run/docker.pid: this test stops and restarts the dockerd it finds there"
    pid = int(pid_file.read_text().strip())
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    return pid, [a.decode() for a in argv]


def _engine_up() -> bool:
    return docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False).returncode == 0


def _restart(argv: list[str]) -> None:
    with open("/var/log/partisim-dockerd.log", "ab") as log:
        subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    wait_for(_engine_up, 60, "dockerd to answer again", interval=0.2)


@pytest.fixture
def stopped_docker(images) -> Iterator[list[str]]:
    """Stop dockerd for the test; it is running again afterwards whatever happened."""
    pid, argv = _dockerd()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 60, "dockerd to exit", interval=0.1)
    try:
        yield argv
    finally:
        if not _engine_up():
            _restart(argv)


@pytest.fixture
def docker_worker(images) -> Iterator[RunningWorker]:
    w = start_worker("127.0.0.1", None, "--runner", "docker", "--capacity", "1", env={"WORKER_ID": "outage-test"})
    yield w
    w.stop()


def test_docker_down_is_503_and_reported_then_served_again(docker_worker, request) -> None:
    with docker_worker.client(timeout=60) as c:
        assert c.get("/health").status_code == 200
        before = c.post("/execute", json=SMALL)
        assert before.status_code == 200, before.text
        argv = request.getfixturevalue("stopped_docker")

        wait_for(lambda: c.get("/health").status_code == 503, 30, "/health to answer 503")
        health = c.get("/health").json()
        assert health["status"] == "unhealthy"
        status = c.get("/status").json()
        assert status["docker_available"] is False
        assert status["docker_error"]
        refused = c.post("/execute", json=SMALL)
        assert refused.status_code == 503
        assert "Docker" in refused.json()["error"]
        assert c.get("/ping").status_code == 200  # cheap and independent of Docker

        _restart(argv)
        wait_for(lambda: c.get("/health").status_code == 200, 60, "/health to answer 200 again")
        assert c.get("/status").json()["docker_available"] is True
        after = c.post("/execute", json=SMALL)
        assert after.status_code == 200, after.text
        assert after.json()["checksum"] == before.json()["checksum"]
