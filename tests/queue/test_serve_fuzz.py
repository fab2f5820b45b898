"""Property-based fuzzing of serve's API from its own /openapi.json (schemathesis), in
this process through the ASGI app, on a real SQLite file: no answer is a 5xx, and every
answer has a documented status, content type and schema (`helpers.fuzz`).

``wait`` (a long poll, up to 60 s) is capped at 0.2 s in the schema the fuzzer reads,
so the run stays short. The fast tier runs a few random examples per operation after
the coverage phase; the slow tier many more.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from helpers.fuzz import fuzz_app
from serve_inprocess import serve_app


def _cap_wait(schema: dict[str, Any]) -> None:
    for operations in schema["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "wait":
                    parameter["schema"]["maximum"] = 0.2


def test_fuzzing_serve_finds_no_server_error_fast(tmp_path: Path) -> None:
    examples = int(os.environ.get("PARTISIM_SERVE_FUZZ_EXAMPLES", "5"))
    seen = fuzz_app(serve_app(tmp_path), examples, adjust=_cap_wait)
    assert seen["2xx"] > 0 and seen["4xx"] > 200 and seen["5xx"] == 0, seen


@pytest.mark.slow
def test_fuzzing_serve_finds_no_server_error_long(tmp_path: Path) -> None:
    seen = fuzz_app(serve_app(tmp_path), 150, adjust=_cap_wait)
    assert seen["2xx"] > 0 and seen["4xx"] > 0 and seen["5xx"] == 0, seen
