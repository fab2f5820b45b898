"""Starting the stand-in for a worker of the users' original design
(tests/helpers/legacy_worker.py) as a real process on a loopback address."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import httpx

from helpers.processes import Spawned

__all__ = ["LEGACY_SCRIPT", "start_legacy", "legacy_runs"]

LEGACY_SCRIPT = Path(__file__).resolve().parent / "legacy_worker.py"


def start_legacy(host: str, log_dir: Path, worker_id: str = "legacy-01", port: int = 0) -> tuple[Spawned, str]:
    """The stand-in listening on ``host`` (a free port unless ``port``): the process and its URL."""
    proc = Spawned(f"legacy-{worker_id}", log_dir)
    proc.launch(
        [sys.executable, str(LEGACY_SCRIPT), "--host", host, "--port", str(port), "--worker-id", worker_id],
        cwd=log_dir,
    )
    found = proc.wait_ready(lambda: (m := re.search(r"LISTENING (\d+)", proc.log())) and int(m.group(1)), 30)
    return proc, f"http://{host}:{found}"


def legacy_runs(url: str) -> list[dict[str, Any]]:
    """What the stand-in was asked, sent and ran, in order."""
    answer: list[dict[str, Any]] = httpx.get(url + "/legacy/runs", timeout=10, trust_env=False).json()
    return answer
