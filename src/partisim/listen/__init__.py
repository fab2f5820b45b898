"""Listening, for the worker and for serve: the socket, bound before a server starts, and
the one uvicorn server wrapper (connection limits, stop signals).

Binding first means a busy port, a foreign address or a bad host is one clear Spanish
error before anything else runs, instead of a traceback from inside uvicorn. Both
services then run through `run_server`: the same receive deadline (408), the same
connection cap (503), the same graceful stop on SIGTERM/SIGINT (exit 0).
"""

from __future__ import annotations

import errno
import math
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import uvicorn

from partisim.errors import ConfigError, explain_os_error
from partisim.listen.connections import guarded_protocol
from partisim.listen.guards import ASGIApp

__all__ = ["bind_socket", "Listener", "Server", "run_server", "raise_file_limit"]


def bind_socket(host: str, port: int, *, busy: str) -> socket.socket:
    """A socket listening on host:port; ``busy`` says, in the error, who may hold the port.

    Raises `ConfigError` naming the address and the reason.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
    # TCP; with proto 0 every small response waited ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    if sys.platform != "win32":  # on Windows SO_REUSEADDR would let two servers share a port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except socket.gaierror:
        sock.close()
        raise ConfigError(f"--host: dirección desconocida {host!r}") from None
    except (OSError, OverflowError) as exc:  # OverflowError: a port outside 0-65535
        sock.close()
        code = getattr(exc, "errno", None)
        if code == errno.EADDRINUSE:
            reason = f"el puerto ya está en uso ({busy})"
        elif code == errno.EADDRNOTAVAIL:
            reason = "esa dirección no pertenece a esta máquina"
        elif code in (errno.EACCES, errno.EPERM):
            reason = "permiso denegado (los puertos < 1024 requieren privilegios)"
        else:
            reason = explain_os_error(exc) if isinstance(exc, OSError) else str(exc)
        raise ConfigError(f"no se puede escuchar en {host}:{port}: {reason}") from None
    return sock


@dataclass(frozen=True)
class Listener:
    """How a service listens: the limits every connection gets, TLS, and who it is."""

    #: seconds to receive one request's headers and body; later: 408 and the connection closed
    request_timeout: float = 10.0
    #: open connections at once; beyond: 503
    max_connections: int = 1000
    #: seconds running requests get to finish on a stop signal
    grace: float = 10.0
    tls_cert: str | None = None
    tls_key: str | None = None
    #: the service, as the 503 answer names it ("este worker", "partisim serve")
    who: str = "este servidor"


class Server(uvicorn.Server):
    """uvicorn's server, telling the service when it has started and when a stop signal came."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        on_started: Callable[[], None] | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._on_exit = on_exit

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_started is not None:
            self._on_started()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._on_exit is not None:
            self._on_exit()


def raise_file_limit(wanted: int) -> None:
    """Let the process hold ``wanted`` descriptors (connections) if the hard limit allows."""
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
    """uvicorn re-raises the stop signal after a graceful stop; the service exits 0 instead."""


def run_server(
    app: ASGIApp,
    sock: socket.socket,
    listener: Listener,
    *,
    on_started: Callable[[], None] | None = None,
    on_exit: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM/SIGINT, with the listener's limits.

    Slow or stalled clients: the guarded protocol (`connections`) bounds the time to
    receive each request (408) and answers 503 (JSON) beyond ``max_connections``."""
    raise_file_limit(listener.max_connections + 256)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=math.ceil(listener.grace),
        server_header=False,
        http=guarded_protocol(listener.request_timeout, listener.who),
        ws="none",
        limit_concurrency=listener.max_connections,
        ssl_certfile=listener.tls_cert,
        ssl_keyfile=listener.tls_key,
    )
    server = Server(config, on_started=on_started, on_exit=on_exit)
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _absorb) for sig in stop_signals}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
