"""Starting the worker: bind, log, serve with uvicorn, stop gracefully on SIGTERM.

On SIGTERM (or Ctrl-C) the worker stops accepting connections and tasks, lets
running tasks finish for `--grace` seconds, kills what is left and exits 0.
"""

from __future__ import annotations

import logging
import sys

from partisim.fleet import resolve_identity
from partisim.listen import Listener, bind_socket, run_server
from partisim.worker.app import create_app
from partisim.worker.settings import WorkerSettings, open_listener_warning

__all__ = ["run_worker", "configure_logging"]


def configure_logging(worker_id: str, level: str = "info") -> None:
    """Timestamped lines on stderr, each naming the worker."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s.%(msecs)03d %(levelname)s [{worker_id}] %(message)s", datefmt="%Y-%m-%d %H:%M:%S"
        )
    )
    ours = logging.getLogger("partisim")
    ours.handlers[:] = [handler]
    ours.setLevel(level.upper())
    ours.propagate = False
    # uvicorn's own lines are English and repeat ours: keep only its warnings and errors.
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(logging.WARNING)
        lg.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


def run_worker(settings: WorkerSettings) -> int:
    """Serve until stopped. Raises `PartisimError` (config, port) before serving."""
    identity = resolve_identity(
        settings.host,
        settings.port,
        worker_id=settings.worker_id,
        config_path=settings.config_path,
        config_explicit=settings.config_explicit,
    )
    configure_logging(identity.worker_id, settings.log_level)
    warning = open_listener_warning(settings)
    if warning:  # first thing said, before the port is even bound
        logging.getLogger("partisim.worker").warning("AVISO: %s", warning)
    sock = bind_socket(settings.host, settings.port, busy="¿otro worker en marcha?")
    port = sock.getsockname()[1]
    if settings.port == 0 and identity.source != "argumento":
        # the entry's port can only be matched once we know it
        identity = resolve_identity(
            settings.host, port, config_path=settings.config_path, config_explicit=settings.config_explicit
        )
        configure_logging(identity.worker_id, settings.log_level)
    app = create_app(settings, identity=identity, port=port)
    listener = Listener(
        request_timeout=settings.request_timeout,
        max_connections=settings.max_connections,
        grace=settings.grace,
        tls_cert=settings.tls_cert,
        tls_key=settings.tls_key,
        who="este worker",
    )
    try:
        run_server(app, sock, listener, on_exit=app.state.service.signal_shutdown)
    finally:
        sock.close()
    return 0
