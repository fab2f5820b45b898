"""Starting the worker: bind, log, serve with uvicorn, stop gracefully on SIGTERM.

On SIGTERM (or Ctrl-C) the worker stops accepting connections and tasks, lets
running tasks finish for `--grace` seconds, kills what is left and exits 0.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
from types import FrameType

import uvicorn

from partisim.fleet import resolve_identity
from partisim.listen import bind_socket
from partisim.worker.app import create_app
from partisim.worker.connections import guarded_protocol
from partisim.worker.service import WorkerService
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


class _Server(uvicorn.Server):
    """uvicorn's server, telling the worker when a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, service: WorkerService) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.service.signal_shutdown()


def _raise_file_limit(wanted: int) -> None:
    """Let the process hold `wanted` descriptors (connections) if the hard limit allows."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


def _absorb(sig: int, frame: FrameType | None) -> None:
    """uvicorn re-raises the stop signal after a graceful stop; we exit 0 instead."""


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
    # Slow or stalled clients: `guarded_protocol` bounds the time to receive each request and
    # answers 503 (JSON) beyond `limit_concurrency` open connections (worker/connections.py).
    _raise_file_limit(settings.max_connections + 256)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=math.ceil(settings.grace),
        server_header=False,
        http=guarded_protocol(settings.request_timeout),
        ws="none",
        limit_concurrency=settings.max_connections,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )
    server = _Server(config, app.state.service)
    stop_signals = [signal.SIGINT, signal.SIGTERM]
    previous = {sig: signal.signal(sig, _absorb) for sig in stop_signals}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return 0
