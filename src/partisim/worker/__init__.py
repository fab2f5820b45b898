"""The worker service: runs simulations on request over HTTP (the worker API of docs/arquitectura.md and the README).

`create_app(settings)` builds the FastAPI app; `run_worker(settings)` serves it
(what `partisim worker` and `python worker_service.py` call). Both are loaded
on first use, so `partisim` commands that only read the settings stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from partisim.worker.settings import WorkerSettings, build_settings

if TYPE_CHECKING:
    from partisim.worker.app import create_app
    from partisim.worker.server import run_worker

__all__ = ["WorkerSettings", "build_settings", "create_app", "run_worker"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from partisim.worker.app import create_app

        return create_app
    if name == "run_worker":
        from partisim.worker.server import run_worker

        return run_worker
    raise AttributeError(name)
