"""Property-based fuzzing of an ASGI app from its own /openapi.json, in this process.

    from helpers.fuzz import fuzz_app
    seen = fuzz_app(app, examples=5)   # Counter of answers per class: {"2xx": .., "4xx": ..}

First schemathesis' coverage phase (every parameter at and just beyond its bounds,
wrong types, unexpected methods), then random cases of both kinds: valid by the schema
and invalid (each must be a 4xx). Each answer is checked: no 5xx, a documented status,
content type and schema. schemathesis runs the app's lifespan once, on its own loop,
and it is shut down before this returns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from partisim.worker.app import create_app
from partisim.worker.settings import Limits, WorkerSettings

__all__ = ["fuzz_app", "small_worker_app", "CHECKS"]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def small_worker_app(tmp: Path) -> FastAPI:
    """A worker app with a small work budget, so every task it accepts ends in milliseconds."""
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


def fuzz_app(app: Any, examples: int, *, adjust: Callable[[dict[str, Any]], None] | None = None) -> Counter[str]:
    """Run the fuzzer over every operation of ``app``; ``adjust`` may edit the schema it reads first."""
    if adjust is not None:
        adjust(app.openapi())
    seen: Counter[str] = Counter()
    modes = GenerationMode.from_choice("all")  # positive, then negative
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise AssertionError(f"the app's OpenAPI document has an invalid operation: {result.err()}")
            operation = result.ok()
            generation = schema.config.generation_for(operation=operation)
            for case in schema.iter_coverage_cases(operation, generation_modes=modes, generation_config=generation):
                seen[f"{case.call_and_validate(checks=CHECKS).status_code // 100}xx"] += 1
            for mode in modes:

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=examples,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                )
                def run(case: schemathesis.Case[Any]) -> None:
                    seen[f"{case.call_and_validate(checks=CHECKS).status_code // 100}xx"] += 1

                try:
                    run()
                except Unsatisfiable:
                    # nothing of this operation can be made invalid (no parameter, no body)
                    assert mode is GenerationMode.NEGATIVE, operation.label
    finally:
        shutdown_lifespans()
    return seen
