"""Property-based fuzzing of serve's API from its own /openapi.json (schemathesis), in
this process through the ASGI app, on a real SQLite file: no answer is a 5xx, and every
answer has a documented status, content type and schema.

First schemathesis' coverage phase (every parameter at and just beyond its bounds,
wrong types, unexpected methods), then random cases of both kinds: valid by the schema
(they reach the queue) and invalid (each must be a 4xx naming the mistake). The fast
tier runs a few random examples per operation; the slow tier many more. ``wait`` (a long poll, up to 60 s) is capped
at 0.2 s in the schema the fuzzer reads, so the run stays short.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serve_inprocess import serve_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _cap_wait(schema: dict) -> None:
    for operations in schema["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "wait":
                    parameter["schema"]["maximum"] = 0.2


def fuzz(tmp: Path, examples: int) -> Counter[str]:
    """Run the fuzzer over every operation; the statuses seen, per class (2xx, 4xx...)."""
    app = serve_app(tmp)
    seen: Counter[str] = Counter()
    _cap_wait(app.openapi())
    try:
        # schemathesis runs the app's lifespan (scheduler, monitor) once, on its own loop
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 12
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        for operation in operations:
            # the coverage phase: each parameter's boundaries and just beyond them
            # (after_seq = 2^63, a string where a number goes, unexpected methods...)
            generation = schema.config.generation_for(operation=operation)
            for case in schema.iter_coverage_cases(operation, generation_modes=modes, generation_config=generation):
                response = case.call_and_validate(checks=CHECKS)
                seen[f"{response.status_code // 100}xx"] += 1
            # then random cases, valid and invalid by the schema
            for mode in modes:

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=examples,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                )
                def run(case: schemathesis.Case) -> None:
                    response = case.call_and_validate(checks=CHECKS)
                    seen[f"{response.status_code // 100}xx"] += 1

                try:
                    run()
                except Unsatisfiable:
                    # nothing of this operation can be made invalid (no parameter, no body)
                    assert mode is GenerationMode.NEGATIVE, operation.label
    finally:
        shutdown_lifespans()  # the queue closes here, not at the end of the process
    return seen


def test_fuzzing_serve_finds_no_server_error_fast(tmp_path: Path) -> None:
    seen = fuzz(tmp_path, int(os.environ.get("PARTISIM_SERVE_FUZZ_EXAMPLES", "8")))
    assert seen["2xx"] > 0 and seen["4xx"] > 0 and seen["5xx"] == 0, seen


@pytest.mark.slow
def test_fuzzing_serve_finds_no_server_error_long(tmp_path: Path) -> None:
    seen = fuzz(tmp_path, 120)
    assert seen["2xx"] > 0 and seen["4xx"] > 0 and seen["5xx"] == 0, seen
