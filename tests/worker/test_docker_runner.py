"""The Docker runner: the command it builds, its unavailable paths, and its run path through a stand-in CLI.

A real engine is exercised by tests/docker (marked `docker`); here the `docker`
executable is either missing or `fake_docker.py`, which runs the container's
command as a local process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.processes import wait_for
from helpers.workers import ENDLESS, TINY

from partisim.cli import build_parser
from partisim.cli.run import params_from_args
from partisim.sim import parse_params, simulate
from partisim.worker.runners import DockerProbe, DockerRunner, Job

ODD = {
    "NUM_PARTICULAS": 37,
    "NUM_PASOS": 25,
    "SEMILLA": 2**62 + 5,
    "ANCHO_MUNDO": 123.456789012345,
    "ALTO_MUNDO": 98.7654321,
    "RADIO_PARTICULA": 0.3,
    "DT": 0.01 / 3,
    "VELOCIDAD_INICIAL_MAX": 7.25,
    "COEF_RESTITUCION_PARED": 0.1 + 0.2,
    "COEF_RESTITUCION_PARTICULA": 1.0,
}


@pytest.fixture
def fake_docker(tmp_path: Path) -> Path:
    wrapper = tmp_path / "docker"
    wrapper.write_text(
        f"#!/bin/sh\nFAKE_DOCKER_DIR='{tmp_path}' exec '{sys.executable}' "
        f"'{Path(__file__).with_name('fake_docker.py')}' \"$@\"\n",
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    return wrapper


def test_command_isolates_and_limits() -> None:
    runner = DockerRunner(
        DockerProbe("docker", "particle-simulation:latest"), cpus=1.5, memory="512m", pids=64, worker_id="worker-01"
    )
    job = Job("t-1", "cython", parse_params(TINY), 30.0)
    name = runner.container_name(job)
    argv = runner.command(job, name)
    assert argv[:4] == ["docker", "run", "--rm", "--network"] and argv[4] == "none"
    joined = " ".join(argv)
    for piece in (
        "--cpus 1.5",
        "--memory 512m",
        "--memory-swap 512m",
        "--pids-limit 64",
        f"--name {name}",
        "--label partisim.task_id=t-1",
        "--label partisim.worker_id=worker-01",
        "--cap-drop ALL",
        "--entrypoint partisim particle-simulation:latest run --engine cython --json",
    ):
        assert piece in joined, piece
    assert name.startswith("partisim-t-1-")
    assert not any(";" in a or "|" in a or "&" in a for a in argv)  # an argv, never a shell line


@pytest.mark.parametrize(
    "task_id", ["tarea ñ 1", "a/b/../c", "x?y#z&w=1 $(id)", "日本語", "-guion", ".punto", "ñ" * 128, "emoji 🚀"]
)
def test_container_name_is_safe_for_any_printable_task_id(task_id: str) -> None:
    """Docker names allow [a-zA-Z0-9][a-zA-Z0-9_.-]*: other characters become '_'; the
    label keeps the exact id, as one argv element (no shell ever sees it)."""
    import re

    runner = DockerRunner(DockerProbe("docker", "img:1"))
    job = Job(task_id, "cython", parse_params(TINY), 5.0)
    names = {runner.container_name(job) for _ in range(5)}
    assert len(names) == 5  # unique even for ids that sanitise alike
    for name in names:
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name) and len(name) <= 100, name
    argv = runner.command(job, names.pop())
    assert f"partisim.task_id={task_id}" in argv


def test_command_carries_every_parameter_exactly() -> None:
    """The container's `partisim run` arguments parse back to the very same parameters."""
    params = parse_params(ODD)
    runner = DockerRunner(DockerProbe("docker", "img:1"))
    argv = runner.command(Job("t-2", "numpy", params, 5.0), "c")
    inside = argv[argv.index("img:1") + 1 :]
    args = build_parser().parse_args(inside)
    assert args.engine == "numpy" and args.json
    assert params_from_args(args) == params
    out = subprocess.run(
        [sys.executable, "-m", "partisim", *inside], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout)["checksum"] == simulate(params, "numpy").checksum


def test_docker_missing_gives_503_and_status_says_so(fresh_worker, tmp_path: Path) -> None:
    w = fresh_worker("--runner", "docker", "--docker-bin", str(tmp_path / "no-docker-here"))
    with w.client() as c:
        s = c.get("/status").json()
        assert s["runner"] == "docker" and s["docker_available"] is False and s["image_available"] is False
        assert "no-docker-here" in s["docker_error"]
        h = c.get("/health")
        assert h.status_code == 503 and h.json()["status"] == "unhealthy"
        assert h.json()["checks"]["runner"]["ok"] is False and h.json()["checks"]["docker"]["required"] is True
        r = c.post("/execute", json={"benchmark": "benchmark.py", "params": TINY, "task_id": "no-docker"})
        assert r.status_code == 503 and r.json()["status"] == "unavailable" and "Docker" in r.json()["error"]
        assert c.post("/tasks", json={"benchmark": "cython", "params": TINY}).status_code == 503
        # refused, not recorded: the id stays free and nothing ran
        assert c.get("/tasks/no-docker").status_code == 404
        assert c.get("/history").json()["count"] == 0
        assert c.get("/ping").status_code == 200  # ping never needs Docker
    assert "Docker: no disponible" in w.log()


def test_auto_falls_back_to_process_and_says_so(fresh_worker, tmp_path: Path) -> None:
    w = fresh_worker("--runner", "auto", "--docker-bin", str(tmp_path / "no-docker-here"))
    with w.client() as c:
        s = c.get("/status").json()
        assert s["runner"] == "process" and s["runner_requested"] == "auto"
        assert "se usa el runner process" in s["runner_note"]
        r = c.post("/execute", json={"benchmark": "cython", "params": TINY})
        assert r.status_code == 200 and r.json()["runner"] == "process"
        assert c.get("/health").status_code == 200
    assert "se usa el runner process" in w.log()


def test_missing_image_gives_503_naming_it(fresh_worker, fake_docker: Path) -> None:
    w = fresh_worker("--runner", "docker", "--docker-bin", str(fake_docker), "--docker-image", "otra-imagen:1")
    with w.client() as c:
        s = c.get("/status").json()
        assert s["docker_available"] is True and s["image_available"] is False and s["docker_image"] == "otra-imagen:1"
        r = c.post("/execute", json={"benchmark": "cython", "params": TINY})
        assert r.status_code == 503 and "otra-imagen:1" in r.json()["error"] and "docker build" in r.json()["error"]
        assert c.get("/health").status_code == 503


def test_runs_through_docker_cli_and_matches_process_runner(fresh_worker, fake_docker: Path, worker) -> None:
    w = fresh_worker("--runner", "auto", "--docker-bin", str(fake_docker), "--capacity", "2")
    body = {"benchmark": "benchmark_cython.py", "params": ODD}
    with w.client() as c, worker.client() as p:
        s = c.get("/status").json()
        assert s["runner"] == "docker" and s["docker_available"] and s["image_available"]
        assert s["docker_version"] == "99.0-fake"
        r = c.post("/execute", json={**body, "task_id": "via-docker"})
        assert r.status_code == 200, r.text
        assert r.json()["runner"] == "docker"
        rec = c.get("/tasks/via-docker").json()
        assert rec["container"].startswith("partisim-via-docker-")
        direct = p.post("/execute", json=body).json()
        for key in ("particle_collisions", "wall_collisions", "checksum", "params"):
            assert r.json()[key] == direct[key], key
    calls = (fake_docker.parent / "calls.log").read_text()
    assert "run --rm --network none" in calls and "--label partisim.task_id=via-docker" in calls


def test_docker_timeout_kills_and_removes_container(fresh_worker, fake_docker: Path) -> None:
    w = fresh_worker("--runner", "docker", "--docker-bin", str(fake_docker))
    with w.client() as c:
        r = c.post("/execute", json={"benchmark": "python", "params": ENDLESS, "timeout": 2, "task_id": "slow-box"})
        assert r.status_code == 504 and r.json()["status"] == "timeout"
        container = c.get("/tasks/slow-box").json()["container"]
    calls = (fake_docker.parent / "calls.log").read_text().splitlines()
    assert f"rm -f {container}" in calls


def test_docker_going_down_is_noticed(fresh_worker, fake_docker: Path) -> None:
    w = fresh_worker("--runner", "docker", "--docker-bin", str(fake_docker))
    with w.client() as c:
        assert c.post("/execute", json={"benchmark": "cython", "params": TINY}).status_code == 200
        (fake_docker.parent / "down").touch()
        # a run that finds the daemon gone answers 503 at once, and /health follows
        r = c.post("/execute", json={"benchmark": "cython", "params": TINY})
        assert r.status_code == 503, r.text
        assert c.get("/health").status_code == 503
        assert c.get("/status").json()["docker_available"] is False or wait_for(
            lambda: c.get("/status").json()["docker_available"] is False, 15, "status to show Docker down"
        )
        (fake_docker.parent / "down").unlink()
        wait_for(
            lambda: c.post("/execute", json={"benchmark": "cython", "params": TINY}).status_code == 200,
            15,
            "Docker back",
        )
        assert c.get("/health").status_code == 200
