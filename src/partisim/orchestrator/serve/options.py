"""How ``partisim serve`` runs: the one place its defaults are stated (the CLI shows them)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServeOptions"]


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
