"""``partisim serve``'s real app in this process, on a real SQLite file, for tests that
send it many requests (the hardening tests and the fuzzing): its lifespan runs (the
scheduler, the health monitor pinging a loopback port where nothing listens)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from helpers.config import write_config
from helpers.processes import free_port_on

from partisim.fleet import load_config
from partisim.serve.options import ServeOptions
from partisim.serve.server import build_app

__all__ = ["serve_app", "serve_client"]

HOST = "127.0.0.61"


def serve_app(tmp: Path, db: Path | None = None, **options: object) -> FastAPI:
    """The app of serve over ``db`` (``tmp/q.db`` by default), one worker that never answers."""
    config = write_config(tmp / "config_workers.json", [("nadie", HOST, free_port_on(HOST))], ping_interval=5.0)
    return build_app(load_config(config), ServeOptions(db=str(db or tmp / "q.db"), **options))  # type: ignore[arg-type]


@contextmanager
def serve_client(tmp: Path, db: Path | None = None, **options: object) -> Iterator[TestClient]:
    """A client of `serve_app`, its lifespan running while the block runs."""
    app = serve_app(tmp, db, **options)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
