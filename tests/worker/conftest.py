"""Fixtures for the worker tests: real `partisim worker` subprocesses on loopback.

The starter lives in tests/helpers/workers.py (shared with other test folders).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.workers import RunningWorker, start_worker  # noqa: E402

TINY = {"NUM_PARTICULAS": 10, "NUM_PASOS": 1, "SEMILLA": 1}
#: a task that would run for many minutes with the python engine
ENDLESS = {"NUM_PARTICULAS": 2000, "NUM_PASOS": 5_000_000, "SEMILLA": 3}


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
    w = start_worker("127.0.0.1", None, "--capacity", "2", "--max-timeout", "2", "--max-particles", "5000",
                     "--max-steps", "200000", "--max-work", "1e6", "--max-body", "2048", "--queue-size", "4")
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
