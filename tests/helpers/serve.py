"""A real `partisim serve` subprocess on loopback.

    from helpers.serve import Serve

    serve = Serve(config, tmp / "q.db", workdir=tmp).start()   # waits for /api/summary
    serve.wait_workers(2)     # until the summary counts 2 active workers
    serve.kill()              # SIGKILL: the server vanishes without closing anything
    serve.start()             # back on the same port and database
    serve.stop()              # SIGTERM, graceful; the exit code

Logs go to `workdir` (one file per start; `.log()` returns them all), which is
also the working directory. The port is picked free when not given.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from helpers.processes import SERVE_HOST, Spawned, answers, free_port_on, wait_for

__all__ = ["Serve"]


class Serve(Spawned):
    def __init__(self, config: Path, db: Path, *, workdir: Path, port: int | None = None,
                 inbox: Path | None = None, host: str = SERVE_HOST, args: Sequence[str] = ()) -> None:
        super().__init__("serve", workdir)
        self.config = config
        self.db = db
        self.workdir = workdir
        self.host = host
        self.port = port or free_port_on(host)
        self.inbox = inbox
        self.args = list(args)  # more options of `partisim serve`

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> Serve:
        """(Re)start and wait until /api/summary answers; RuntimeError with the log otherwise."""
        argv = [sys.executable, "-m", "partisim", "serve", "--config", str(self.config), "--db", str(self.db),
                "--host", self.host, "--port", str(self.port)]
        if self.inbox is not None:
            argv += ["--inbox", str(self.inbox)]
        argv += self.args
        self.launch(argv, cwd=self.workdir)
        self.wait_ready(lambda: answers(self.url + "/api/summary"), timeout)
        return self

    def summary(self) -> dict:
        return httpx.get(self.url + "/api/summary", timeout=10.0, trust_env=False).json()

    def wait_workers(self, active: int, timeout: float = 30.0) -> None:
        """Until the summary counts at least `active` active workers."""
        wait_for(lambda: self.summary()["workers_active"] >= active, timeout, f"{active} active workers")

    def stop(self, timeout: float = 20.0) -> int | None:
        return super().stop(timeout)
