"""Property-based run of schemathesis over the worker's /openapi.json: no 5xx, answers as documented.

The worker under test has a small work budget so every admissible task ends in
milliseconds, far inside the 0.5 s minimum deadline: a 5xx here is a bug, not a timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.workers import start_worker


@pytest.fixture(scope="module")
def bounded_worker():
    w = start_worker(
        "127.0.0.1",
        None,
        "--capacity",
        "2",
        "--max-timeout",
        "5",
        "--max-particles",
        "1000",
        "--max-steps",
        "50",
        "--max-work",
        "2000",
        "--max-body",
        "4096",
        "--queue-size",
        "4",
    )
    yield w
    w.stop()


def test_schemathesis_finds_no_server_error(bounded_worker, tmp_path: Path) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    assert exe, "schemathesis is in the test extra"
    examples = os.environ.get("PARTISIM_SCHEMATHESIS_EXAMPLES", "30")
    cmd = [
        exe,
        "run",
        f"{bounded_worker.url}/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--max-examples",
        examples,
        "--seed",
        "20261126",
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"}
    )
    report = out.stdout + out.stderr
    assert out.returncode == 0, report[-6000:]
    assert "passed" in report and "failed" not in report.split("Test cases:")[-1]
    # and the worker's own request log agrees: no request answered 5xx
    answered = re.findall(r"\] (?:GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS|TRACE) \S+ (\d{3}) ", bounded_worker.log())
    assert len(answered) > 100 and not [c for c in answered if c.startswith("5")]
