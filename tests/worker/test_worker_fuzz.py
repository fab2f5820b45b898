"""Property-based fuzzing of the worker's API from its own /openapi.json, in this process
through the ASGI app (`helpers.fuzz`; tests/worker/test_schemathesis.py runs the CLI
against a real worker process). The worker has a small work budget, so every task it
accepts ends in milliseconds: a 5xx here is a bug, never a timeout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.fuzz import fuzz_app

from partisim.worker.app import create_app
from partisim.worker.settings import Limits, WorkerSettings


def _worker_app(tmp: Path):
    settings = WorkerSettings(
        host="127.0.0.1",
        port=0,
        worker_id="fuzz",
        config_path=str(tmp / "none.json"),
        runner="process",
        capacity=2,
        queue_size=4,
        max_timeout=5.0,
        limits=Limits(max_particles=1000, max_steps=50, max_work=2000, max_body_bytes=4096),
    )
    return create_app(settings, port=0)


def test_fuzzing_the_worker_finds_no_server_error_fast(tmp_path: Path) -> None:
    seen = fuzz_app(_worker_app(tmp_path), int(os.environ.get("PARTISIM_WORKER_FUZZ_EXAMPLES", "5")))
    assert seen["2xx"] > 0 and seen["4xx"] > 0 and seen["5xx"] == 0, seen


@pytest.mark.slow
def test_fuzzing_the_worker_finds_no_server_error_long(tmp_path: Path) -> None:
    seen = fuzz_app(_worker_app(tmp_path), 150)
    assert seen["2xx"] > 0 and seen["4xx"] > 0 and seen["5xx"] == 0, seen
