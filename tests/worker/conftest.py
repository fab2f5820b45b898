"""Fixtures for the worker tests: real `partisim worker` subprocesses on loopback, and
the same app in this process (``app_client``, ``limited_app``) for answers that need no
worker process of its own.

The starters (and the TINY / ENDLESS tasks) live in tests/helpers/workers.py and
tests/helpers/inprocess.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from helpers.inprocess import worker_app
from helpers.workers import RunningWorker, start_worker

#: the small limits of ``limited_worker`` and ``limited_app``
LIMITED = {
    "capacity": "2",
    "max_timeout": "2",
    "max_particles": "5000",
    "max_steps": "200000",
    "max_work": "1e6",
    "max_body_bytes": "2048",
    "queue_size": "4",
}


@pytest.fixture(scope="session")
def app_client() -> Iterator[httpx.Client]:
    """The worker app in this process: capacity 2, default limits."""
    with worker_app({"capacity": "2", "max_timeout": "60"}) as client:
        yield client


@pytest.fixture(scope="session")
def limited_app() -> Iterator[httpx.Client]:
    """The worker app in this process with ``limited_worker``'s small limits."""
    with worker_app(LIMITED) as client:
        yield client


@pytest.fixture(scope="session")
def worker() -> Iterator[RunningWorker]:
    """The shared worker: capacity 2, default limits."""
    w = start_worker("127.0.0.1", None, "--capacity", "2", "--max-timeout", "60")
    yield w
    w.stop()


@pytest.fixture
def client(worker: RunningWorker) -> Iterator[httpx.Client]:
    with worker.client() as c:
        yield c


@pytest.fixture(scope="session")
def limited_worker() -> Iterator[RunningWorker]:
    """Small limits, short max timeout: for limit refusals and the schemathesis run."""
    w = start_worker(
        "127.0.0.1",
        None,
        "--capacity",
        "2",
        "--max-timeout",
        "2",
        "--max-particles",
        "5000",
        "--max-steps",
        "200000",
        "--max-work",
        "1e6",
        "--max-body",
        "2048",
        "--queue-size",
        "4",
    )
    yield w
    w.stop()


@pytest.fixture
def fresh_worker() -> Iterator[callable]:
    """Start workers of the test's own; all are stopped (or killed) at teardown."""
    started: list[RunningWorker] = []

    def start(*args: str, host: str = "127.0.0.1", port: int | None = None, **kw) -> RunningWorker:
        w = start_worker(host, port, *args, **kw)
        started.append(w)
        return w

    yield start
    for w in started:
        if w.alive():
            w.stop(timeout=10)
        w.kill()
