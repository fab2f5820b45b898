"""``partisim serve``: configuration, queue, health monitor, scheduler, inbox and the
REST API under one uvicorn server. SIGTERM (or Ctrl-C) stops it gracefully: no new
dispatches, in-flight tasks get a grace period, the rest are reconciled at next start.
"""

from __future__ import annotations

import logging
import signal
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from partisim.errors import ConfigError
from partisim.fleet import Config
from partisim.orchestrator.registry import HealthMonitor, WorkerHealth, token_from_env
from partisim.orchestrator.serve.app import Hook, create_app
from partisim.orchestrator.serve.executor import Executor
from partisim.orchestrator.serve.http_fleet import HttpFleet
from partisim.orchestrator.serve.inbox import Inbox
from partisim.orchestrator.serve.scheduler import RetryPolicy, Scheduler
from partisim.orchestrator.serve.state import DEFAULT_PAGE_SIZE, ServeState
from partisim.orchestrator.serve.taskqueue import TaskQueue
from partisim.orchestrator.views import NO_ACTIVE_WORKERS

__all__ = ["ServeOptions", "build_app", "serve", "check_port", "exclusive_database"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    db: str = "partisim.db"
    host: str = "127.0.0.1"
    port: int = 8000
    inbox: str | None = None
    shutdown_grace: float = 10.0
    retry_base: float = 0.5
    page_size: int = DEFAULT_PAGE_SIZE


def open_queue(path: str, max_attempts: int) -> TaskQueue:
    try:
        return TaskQueue(path, max_attempts=max_attempts)
    except sqlite3.Error as exc:
        raise ConfigError(f"no se puede abrir la base de datos {path}: {exc}") from None


def report_no_workers(executor: Executor) -> None:
    """Say so loudly when no worker is answering (the registry logs each change)."""
    if executor.active_members() == 0:
        log.warning("%s: las tareas esperan en cola hasta que un worker responda "
                    "(revise que los workers estén en marcha y las direcciones de la configuración)",
                    NO_ACTIVE_WORKERS)


def build_app(config: Config, options: ServeOptions) -> FastAPI:
    """Wire every part of serve into one FastAPI app (started by its lifespan)."""
    settings = config.orchestrator
    # retry_attempts counts the retries: a task gets one first try plus that many more
    queue = open_queue(options.db, max_attempts=1 + settings.retry_attempts)
    fleet = HttpFleet(HealthMonitor.from_config(config), settings, token=token_from_env())
    scheduler = Scheduler(queue, fleet, policy=RetryPolicy(base=options.retry_base))
    state = ServeState(queue=queue, scheduler=scheduler, page_size=options.page_size)

    def on_change(_health: WorkerHealth) -> None:
        report_no_workers(fleet)
        scheduler.wake()

    async def report_first_round() -> None:
        # the monitor's first round ran before the startup hooks; workers that never
        # answered did not "change" state, so check the fleet once here
        report_no_workers(fleet)

    fleet.watch(on_change)
    startup: list[Hook] = [report_first_round]
    shutdown: list[Hook] = []
    if options.inbox:
        inbox = Inbox(options.inbox, queue, on_enqueued=scheduler.wake)
        inbox.prepare()
        startup.append(inbox.start)
        shutdown.append(inbox.stop)

    app = create_app(state, on_startup=startup, on_shutdown=shutdown, shutdown_grace=options.shutdown_grace)
    app.state.options = options
    app.state.config = config
    return app


def check_port(host: str, port: int) -> None:
    """Fail early, in Spanish, when the address cannot be used."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"no se puede escuchar en {host}:{port}: {exc.strerror}") from None


def _absorb(sig: int, frame: Any) -> None:
    """Placeholder handler: uvicorn installs its own while serving."""


class _Server(uvicorn.Server):
    """uvicorn, plus: on SIGTERM/SIGINT release long-poll requests at once."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: Any) -> None:
        log.info("señal %s recibida: parada ordenada", sig)
        self._app.state.serve.notifier.close()
        super().handle_exit(sig, frame)


@contextmanager
def exclusive_database(db: str) -> Iterator[None]:
    """Hold ``<db>.lock`` while serving: two serves dispatching one queue would each
    reconcile the other's running tasks. The kernel drops the lock if we are killed."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; trust the user
        yield
        return
    path = Path(str(db) + ".lock")
    try:
        handle = open(path, "a+")
    except OSError as exc:
        raise ConfigError(f"no se puede crear {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(
                f"otra instancia de partisim serve ya usa la base de datos {db}; "
                "deténgala o use otra con --db"
            ) from None
        yield
    finally:
        handle.close()


def serve(config: Config, options: ServeOptions) -> None:
    """Run until SIGTERM/SIGINT."""
    if options.inbox:
        try:
            Path(options.inbox).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--inbox: no se puede usar la carpeta {options.inbox}: {exc.strerror}") from None
    check_port(options.host, options.port)
    with exclusive_database(options.db):
        _run(config, options)


def _run(config: Config, options: ServeOptions) -> None:
    app = build_app(config, options)
    server = _Server(
        uvicorn.Config(
            app,
            host=options.host,
            port=options.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=max(1, int(options.shutdown_grace)),
        ),
        app,
    )
    # uvicorn re-raises the stop signal once it has stopped gracefully; absorb it so a
    # SIGTERM ends serve with exit code 0 after the orderly stop.
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _absorb) for sig in stop_signals}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
