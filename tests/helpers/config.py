"""Write a config_workers.json for tests.

    from helpers.config import write_config

    write_config(tmp / "config_workers.json",
                 [("worker-01", "127.0.0.93", 8080), ("worker-02", "http://127.0.0.155:8080")],
                 ping_interval=0.3)

Each worker is `(id, host, port)`, `(id, url)` (an https url adds `"tls": true`) or a
dict written as it is. The orchestrator settings are DEFAULTS (the program's own
defaults, written out) updated with `settings`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["DEFAULTS", "write_config"]

DEFAULTS: dict[str, Any] = {"timeout": 5.0, "retry_attempts": 3, "max_concurrent_tasks": 4}


def _entry(worker: tuple[str, ...] | tuple[str, str, int] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(worker, dict):
        return worker
    if len(worker) == 3:
        worker_id, host, port = worker
        return {"id": worker_id, "ip": host, "port": int(port)}
    worker_id, url = worker
    scheme, rest = url.split("://", 1)
    host, port = rest.rsplit(":", 1)
    return {"id": worker_id, "ip": host, "port": int(port), **({"tls": True} if scheme == "https" else {})}


def write_config(
    path: Path, workers: Iterable[tuple[str, ...] | tuple[str, str, int] | dict[str, Any]], **settings: Any
) -> Path:
    """Write `path` for `workers` ((id, host, port) or (id, url)) and the settings; `path` returned."""
    data = {"workers": [_entry(w) for w in workers], "orchestrator": {**DEFAULTS, **settings}}
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path
