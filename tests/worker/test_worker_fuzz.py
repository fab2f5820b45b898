"""Property-based fuzzing of the worker's API from its own /openapi.json, in this process
through the ASGI app (`helpers.fuzz`; tests/worker/test_schemathesis.py runs the CLI
against a real worker process). The worker has a small work budget, so every task it
accepts ends in milliseconds: a 5xx here is a bug, never a timeout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.fuzz import fuzz_app, small_worker_app


def test_fuzzing_the_worker_finds_no_server_error_fast(tmp_path: Path) -> None:
    seen = fuzz_app(small_worker_app(tmp_path), int(os.environ.get("PARTISIM_WORKER_FUZZ_EXAMPLES", "5")))
    assert seen["2xx"] > 0 and seen["4xx"] > 0 and seen["5xx"] == 0, seen


@pytest.mark.slow
def test_fuzzing_the_worker_finds_no_server_error_long(tmp_path: Path) -> None:
    seen = fuzz_app(small_worker_app(tmp_path), 150)
    assert seen["2xx"] > 0 and seen["4xx"] > 0 and seen["5xx"] == 0, seen
