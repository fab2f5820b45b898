"""``partisim serve``: configuration, queue, health monitor, scheduler, inbox and the
REST API under one uvicorn server. SIGTERM (or Ctrl-C) stops it gracefully: no new
dispatches, in-flight tasks get a grace period, the rest are reconciled at next start.

Start-up checks everything that can be checked before serving, each failure a
`ConfigError` with a Spanish message (exit code 2, no traceback): the TLS files, the
listening address (bound here, before anything else starts), the database's integrity
(``PRAGMA quick_check``: a damaged, truncated or foreign file is refused) and the
workers' token files. The caller hears ``on_listening`` only once the server accepts
connections, so a banner is never printed for a server that did not start.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sqlite3
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from partisim.errors import ConfigError, explain_os_error
from partisim.fleet import Config, DaskTarget, local_addresses
from partisim.fleet.advice import NO_ACTIVE_WORKERS
from partisim.fleet.health import HealthMonitor, WorkerHealth
from partisim.listen import Listener, bind_socket, run_server
from partisim.serve.executors.base import Executor
from partisim.serve.executors.http import HttpFleet
from partisim.serve.inbox import Inbox
from partisim.serve.options import ServeOptions
from partisim.serve.queue.store import TaskQueue
from partisim.serve.scheduler import RetryPolicy, Scheduler
from partisim.serve.web.app import Hook, create_app
from partisim.serve.web.context import ServeState

__all__ = [
    "ServeOptions",
    "Listening",
    "build_app",
    "serve",
    "check_tls",
    "check_scheduler",
    "dask_target",
    "exclusive_database",
    "is_loopback",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listening:
    """Where serve answers, once it does."""

    url: str
    dashboard: str


def open_queue(path: str, max_attempts: int) -> TaskQueue:
    """The queue, checked: a damaged database is a clear error before anything runs."""
    if Path(path).is_dir():
        raise ConfigError(f"--db: {path} es una carpeta; indique un archivo de base de datos")
    try:
        return TaskQueue(path, max_attempts=max_attempts, verify=True)
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            f"la base de datos {path} está dañada o no es de partisim ({exc}); restaure una copia o use otra con --db"
        ) from None
    except sqlite3.Error as exc:
        raise ConfigError(f"no se puede abrir la base de datos {path}: {exc}") from None


def dask_target(config: Config, options: ServeOptions) -> DaskTarget | None:
    """Where Dask runs the tasks (``--dask``, else the config's ``dask.address``); None: the HTTP fleet."""
    try:
        return config.dask.target(options.dask)
    except ValueError as exc:
        raise ConfigError(f"--dask: {exc}") from None


class NoWorkersReport:
    """Say so loudly when no worker is answering: once when the last one goes (however
    many went in the same health round), and again only after one came back."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.reported = False

    def __call__(self) -> None:
        if self.executor.active_members() > 0:
            self.reported = False
        elif not self.reported:
            self.reported = True
            log.warning(
                "%s: las tareas esperan en cola hasta que un worker responda "
                "(revise que los workers estén en marcha y las direcciones de la configuración)",
                NO_ACTIVE_WORKERS,
            )


def build_app(config: Config, options: ServeOptions) -> FastAPI:
    """Wire every part of serve into one FastAPI app (started by its lifespan)."""
    settings = config.orchestrator
    # retry_attempts counts the retries: a task gets one first try plus that many more
    target = dask_target(config, options)
    executor: Executor
    if target is not None:
        from partisim.serve.executors.dask.cluster import DaskCluster
        from partisim.serve.executors.dask.provision import require_dask

        require_dask(target.kind)
        executor = DaskCluster(target, config.dask)
    else:
        monitor = HealthMonitor.from_config(config, ca_file=options.ca_file)  # reads token files: fails early
        executor = HttpFleet(monitor, settings)
    queue = open_queue(options.db, max_attempts=1 + settings.retry_attempts)
    scheduler = Scheduler(queue, executor, policy=RetryPolicy(base=options.retry_base))
    state = ServeState(queue=queue, scheduler=scheduler, page_size=options.page_size)
    report_no_workers = NoWorkersReport(executor)

    async def report_first_round() -> None:
        # the monitor's first round ran before the startup hooks; workers that never
        # answered did not "change" state, so check the fleet once here (a SLURM/PBS
        # cluster starts empty on purpose: its jobs come when there is work)
        if target is None or target.kind not in ("slurm", "pbs"):
            report_no_workers()

    if isinstance(executor, HttpFleet):
        fleet = executor

        def on_change(_health: WorkerHealth) -> None:
            report_no_workers()
            scheduler.wake()

        fleet.watch(on_change)
    startup: list[Hook] = [report_first_round]
    shutdown: list[Hook] = []
    if options.inbox:
        inbox = Inbox(options.inbox, queue, on_enqueued=scheduler.wake)
        inbox.prepare()
        startup.append(inbox.start)
        shutdown.append(inbox.stop)

    app = create_app(
        state,
        on_startup=startup,
        on_shutdown=shutdown,
        shutdown_grace=options.shutdown_grace,
        token=options.token,
        secure_cookie=options.tls_cert is not None,
        max_body_bytes=options.max_body_bytes,
    )
    app.state.options = options
    app.state.config = config
    return app


def check_tls(cert: str | None, key: str | None) -> None:
    """Both files or neither, and they must form a usable pair."""
    if cert is None and key is None:
        return
    if cert is None or key is None:
        raise ConfigError("--tls-cert y --tls-key van juntos: indique el certificado y su clave privada")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise ConfigError(f"{flag}: no existe el archivo {path}")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"--tls-cert/--tls-key: no se pueden usar {cert} y {key} "
            f"(¿certificado y clave PEM que se corresponden?): {exc}"
        ) from None


def check_scheduler(address: str, timeout: float = 5.0) -> None:
    """Fail early, in Spanish, when nothing listens at the Dask scheduler's address."""
    rest = address.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            f"no hay un planificador Dask en {address} ({explain_os_error(exc)}); inícielo (dask scheduler) "
            "o use --dask local:N para que partisim serve arranque uno propio"
        ) from None


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip()).is_loopback
    except ValueError:
        return False


def _listening(options: ServeOptions, port: int) -> Listening:
    host = options.host
    shown = host
    if host in ("0.0.0.0", "::", ""):
        # the address other machines use: this machine's own, not the wildcard
        shown = next((a for a in local_addresses() if not is_loopback(a)), "127.0.0.1")
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"{options.scheme}://{shown}:{port}"
    return Listening(url=url, dashboard=url + "/")


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
    existed = path.exists()
    try:
        handle = open(path, "a+")  # noqa: SIM115 -- held open while serving, closed below
    except OSError as exc:
        raise ConfigError(f"no se puede crear {path}: {explain_os_error(exc)}") from None
    locked = False
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(
                f"otra instancia de partisim serve ya usa la base de datos {db}; deténgala o use otra con --db"
            ) from None
        locked = True
        yield
    except ConfigError:
        # refused (the database is damaged or another program's, say): leave the folder
        # as it was; the lock file goes while still held, so no other serve holds it
        if locked and not existed:
            with suppress(OSError):
                path.unlink()
        raise
    finally:
        handle.close()


def serve(config: Config, options: ServeOptions, on_listening: Callable[[Listening], None] | None = None) -> None:
    """Run until SIGTERM/SIGINT; ``on_listening`` once connections are accepted."""
    check_tls(options.tls_cert, options.tls_key)
    if options.inbox:
        try:
            Path(options.inbox).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"--inbox: no se puede usar la carpeta {options.inbox}: {explain_os_error(exc)}"
            ) from None
    if options.token is None and not is_loopback(options.host):
        log.warning(
            "ATENCIÓN: partisim serve escucha en %s sin token: cualquiera que llegue a esta máquina "
            "puede encolar y cancelar tareas. Use --token-file o PARTISIM_TOKEN.",
            options.host,
        )
    target = dask_target(config, options)
    if target is not None:
        from partisim.serve.executors.dask.provision import require_dask

        require_dask(target.kind)
        if target.kind == "scheduler":
            check_scheduler(target.address)
    sock = bind_socket(options.host, options.port, busy="¿otra instancia de partisim serve?")
    try:
        with exclusive_database(options.db):
            _run(config, options, sock, on_listening)
    finally:
        sock.close()


def _run(
    config: Config, options: ServeOptions, sock: socket.socket, on_listening: Callable[[Listening], None] | None
) -> None:
    app = build_app(config, options)
    listening = _listening(options, sock.getsockname()[1])
    notifier = app.state.serve.notifier

    def on_exit() -> None:
        log.info("señal recibida: parada ordenada")
        notifier.close()  # long polls and event streams let go at once

    listener = Listener(
        request_timeout=options.request_timeout,
        max_connections=options.max_connections,
        grace=max(1.0, options.shutdown_grace),
        tls_cert=options.tls_cert,
        tls_key=options.tls_key,
        who="partisim serve",
    )
    run_server(
        app,
        sock,
        listener,
        on_started=(lambda: on_listening(listening)) if on_listening is not None else None,
        on_exit=on_exit,
    )
