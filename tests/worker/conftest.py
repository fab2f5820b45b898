"""Fixtures for the worker tests: real `partisim worker` subprocesses on loopback.

The starter (and the TINY / ENDLESS tasks) live in tests/helpers/workers.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from helpers.workers import RunningWorker, start_worker


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
