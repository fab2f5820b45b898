"""The `docker` suite runs against a real Docker engine: no fake CLI, no mocks.

`.ci/run` starts the engine with `.ci/docker.sh` and requires the suite
(`PARTISIM_REQUIRE=docker`); then, if the engine does not answer, this conftest runs that
script itself (as root), and an engine that cannot start fails the suite. Without the
requirement (a plain `pytest` on a fresh machine) a missing engine skips the suite with
the reason, and the terminal summary says so loudly.

The images are built once per session with the real `partisim images build
--offline` from the debootstrap base image `partisim-base:bookworm`: the wheelhouse
is made first (online, from pip's cache when warm) and the image build runs with
`docker build --network none`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dockertools import BASE_IMAGE, SIM_IMAGE, WORKER_IMAGE, docker, partisim_cli  # noqa: E402
from helpers.requirements import start_with_script, unavailable  # noqa: E402

DOCKER_SH = REPO / ".ci" / "docker.sh"

_state: dict[str, str | None] = {"skip_reason": None, "engine": None}


def _engine_answers() -> bool:
    try:
        return docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _start_engine() -> str | None:
    """None when an engine answers (started here only when the suite is required), else why not."""
    return start_with_script(
        "docker",
        DOCKER_SH,
        ready=lambda: _engine_answers() and docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0,
        started=_engine_answers,
        missing=(
            "no responde un motor Docker con la imagen base "
            + BASE_IMAGE
            + "; arránquelo con `sudo bash .ci/docker.sh` (o use PARTISIM_REQUIRE=docker)"
        ),
        not_root="docker no responde y no somos root para arrancar dockerd con .ci/docker.sh",
    )


@pytest.fixture(scope="session")
def docker_suite_lock() -> Iterator[None]:
    """One docker suite at a time on this machine: the suite restarts dockerd (the outage
    test), builds images under fixed tags and counts containers by label, so a second
    test run waits here instead of breaking the first one."""
    path = Path(tempfile.gettempdir()) / "partisim-docker-suite.lock"
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def docker_engine(docker_suite_lock: None) -> str:
    """The engine's version and storage driver; skips the suite only when no engine can start."""
    if _state["engine"] is None and _state["skip_reason"] is None:
        reason = _start_engine()
        if reason:
            _state["skip_reason"] = reason
        else:
            _state["engine"] = docker("info", "--format", "{{.ServerVersion}} ({{.Driver}})").stdout.strip()
    if _state["skip_reason"]:
        unavailable("docker", f"no hay motor Docker: {_state['skip_reason']}")
    return _state["engine"] or "?"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _state["skip_reason"]:
        terminalreporter.write_sep("!", "DOCKER SUITE SKIPPED: no Docker engine could be started", red=True, bold=True)
        terminalreporter.write_line(_state["skip_reason"], red=True)
    elif _state["engine"]:
        terminalreporter.write_line(f"docker suite: real engine {_state['engine']}")


@dataclass(frozen=True)
class Built:
    output: str
    project: Path
    wheelhouse: Path
    ids: dict[str, str]


def _snapshot(dest: Path) -> Path:
    """A copy of what the images are built from, so edits made during the run change nothing."""
    for name in ("pyproject.toml", "setup.py", "README.md", "Dockerfile", "Dockerfile.worker"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, dest / name)
    shutil.copytree(
        REPO / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.egg-info", "*.pyc")
    )
    return dest


def _wheelhouse_dir() -> Path:
    """Kept between runs (pip and Docker then reuse their work): /var/cache/partisim as root."""
    if os.environ.get("PARTISIM_TEST_WHEELHOUSE"):
        return Path(os.environ["PARTISIM_TEST_WHEELHOUSE"])
    if os.geteuid() == 0:
        return Path("/var/cache/partisim/wheelhouse")
    return Path(tempfile.gettempdir()) / "partisim-test-wheelhouse"


def _image_id(image: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()


@pytest.fixture(scope="session")
def images(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """Both images, built offline from the debootstrap base with `partisim images build`."""
    project = _snapshot(tmp_path_factory.mktemp("project"))
    wheelhouse = _wheelhouse_dir()
    wheelhouse.parent.mkdir(parents=True, exist_ok=True)
    with open(wheelhouse.parent / ".partisim-images.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building the same images
        made = partisim_cli("images", "wheelhouse", "--project", str(project), "--wheelhouse", str(wheelhouse))
        assert made.returncode == 0, f"partisim images wheelhouse failed:\n{made.stdout}\n{made.stderr}"
        built = partisim_cli(
            "images",
            "build",
            "--offline",
            "--base-image",
            BASE_IMAGE,
            "--project",
            str(project),
            "--wheelhouse",
            str(wheelhouse),
        )
        assert built.returncode == 0, f"partisim images build --offline failed:\n{built.stdout}\n{built.stderr}"
        yield Built(
            built.stdout, project, wheelhouse, {SIM_IMAGE: _image_id(SIM_IMAGE), WORKER_IMAGE: _image_id(WORKER_IMAGE)}
        )
