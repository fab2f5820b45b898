"""How ``partisim serve`` runs: the one place its defaults are stated (the CLI shows them)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ServeOptions", "DEFAULT_PAGE_SIZE", "DEFAULT_MAX_BODY_BYTES"]

#: most tasks in one page of ``GET /api/tasks`` (and per read of an export)
DEFAULT_PAGE_SIZE = 5000
#: largest request body serve reads (``--max-body-mb``)
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ServeOptions:
    db: str = "partisim.db"
    host: str = "127.0.0.1"
    port: int = 8000
    inbox: str | None = None
    #: seconds in-flight tasks get to finish on SIGTERM before serve leaves them to the next start
    shutdown_grace: float = 10.0
    #: first retry delay (seconds); doubles per attempt, with jitter
    retry_base: float = 0.5
    #: most tasks per page of /api/tasks; a larger ``limit`` gets this many and a ``next`` cursor
    page_size: int = DEFAULT_PAGE_SIZE
    #: the token every client must present (None: serve is open to anyone who reaches it)
    token: str | None = field(default=None, repr=False)
    #: PEM certificate and key: serve https instead of http
    tls_cert: str | None = None
    tls_key: str | None = None
    #: CA of the workers' certificates (overrides PARTISIM_CA_FILE and the config's ca_file)
    ca_file: str | None = None
    #: ``--dask ADDRESS`` (wins over the config's ``dask.address``); None: as the config says
    dask: str | None = None
    #: seconds to receive one request's headers and body; later: 408 and the connection closed
    request_timeout: float = 10.0
    #: open connections at once (the dashboards' event streams count); beyond: 503
    max_connections: int = 1000
    #: largest request body (the CLI sends 10 000 tasks per request, about 3 MiB); beyond: 413
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"
