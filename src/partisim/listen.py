"""Opening a listening socket before a server starts, for the worker and for serve.

Binding first means a busy port, a foreign address or a bad host is one clear Spanish
error before anything else runs, instead of a traceback from inside uvicorn.
"""

from __future__ import annotations

import errno
import socket
import sys

from partisim.errors import ConfigError, explain_os_error

__all__ = ["bind_socket"]


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
