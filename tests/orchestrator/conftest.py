"""Fixtures for the orchestrator tests: real worker subprocesses on loopback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.config import write_config
from helpers.processes import HOST_A, HOST_B, free_port_on
from orch_support import Pair, launch_worker, start_pair, stop_pair

from partisim.cli import main


@pytest.fixture(scope="session")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Shared pair for tests that do not kill workers."""
    p = start_pair(tmp_path_factory.mktemp("pair"))
    yield p
    stop_pair(p)


@pytest.fixture
def fresh_pair(pair: Pair, tmp_path: Path) -> Iterator[Pair]:
    """worker-01 is the shared pair's; worker-02 is a worker of its own on HOST_B, so a
    test may kill it."""
    victim = launch_worker(HOST_B, None, "worker-02")  # --port 0: no race for a free port
    config = write_config(
        tmp_path / "config_workers.json", [("worker-01", HOST_A, pair.port), ("worker-02", HOST_B, victim.port)]
    )
    yield Pair(pair.port, pair.a, victim, config)
    victim.kill()


@pytest.fixture
def dead_config(tmp_path: Path) -> Path:
    """A configuration whose two workers are not running."""
    port = free_port_on(HOST_A, HOST_B)
    return write_config(tmp_path / "config_workers.json", [("worker-01", HOST_A, port), ("worker-02", HOST_B, port)])


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., tuple[int, str, str]]]:
    """``partisim`` in this process (no start-up cost); the logging setup it makes
    is undone afterwards so other tests see the logging they expect."""
    names = ["", "httpx", "httpcore"]
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers)) for n in names}

    def call(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    yield call
    for n, (level, handlers) in saved.items():
        logger = logging.getLogger(n)
        logger.setLevel(level)
        logger.handlers[:] = handlers
