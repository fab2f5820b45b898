"""A real `partisim serve` subprocess on loopback.

    from helpers.serve import Serve

    serve = Serve(config, tmp / "q.db", workdir=tmp).start()   # waits for /api/summary
    serve.wait_workers(2)     # until the summary counts 2 active workers
    serve.kill()              # SIGKILL: the server vanishes without closing anything
    serve.start()             # back on the same port and database
    serve.stop()              # SIGTERM, graceful; the exit code

Logs go to `workdir` (one file per start; `.log()` returns them all), which is
also the working directory. The port is picked free when not given. With `token`,
serve is started with PARTISIM_TOKEN and the helper's own requests send it; with
`tls=(cert, key)` it serves https and the helper trusts that certificate.
"""

from __future__ import annotations

import ssl
import sys
from pathlib import Path
from typing import Any

import httpx

from helpers.processes import SERVE_HOST, Spawned, clean_env, free_port_on, wait_for

__all__ = ["Serve"]


class Serve(Spawned):
    def __init__(
        self,
        config: Path,
        db: Path,
        *,
        workdir: Path,
        port: int | None = None,
        inbox: Path | None = None,
        host: str = SERVE_HOST,
        token: str | None = None,
        tls: tuple[Path, Path] | None = None,
        extra: tuple[str, ...] = (),
        env: dict[str, str | None] | None = None,
    ) -> None:
        super().__init__("serve", workdir)
        self.config = config
        self.db = db
        self.workdir = workdir
        self.host = host
        self.port = port or free_port_on(host)
        self.inbox = inbox
        self.token = token
        self.tls = tls
        self.extra = extra
        self.env = env or {}

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=str(self.tls[0])) if self.tls else True

    def http(self, **kw: Any) -> httpx.Client:
        """A client of this serve, with its token and its certificate trusted."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(
            base_url=self.url,
            headers=headers,
            verify=self.verify,
            trust_env=False,
            timeout=kw.pop("timeout", 10.0),
            **kw,
        )

    def start(self, timeout: float = 30.0) -> Serve:
        """(Re)start and wait until /api/summary answers; RuntimeError with the log otherwise."""
        argv = [
            sys.executable,
            "-m",
            "partisim",
            "serve",
            "--config",
            str(self.config),
            "--db",
            str(self.db),
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.extra,
        ]
        if self.inbox is not None:
            argv += ["--inbox", str(self.inbox)]
        if self.tls is not None:
            argv += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        env = {"PYTHONUNBUFFERED": "1", **({"PARTISIM_TOKEN": self.token} if self.token else {}), **self.env}
        self.launch(argv, cwd=self.workdir, env=clean_env(**env))
        self.wait_ready(self._answers, timeout)
        return self

    def _answers(self) -> bool:
        with self.http(timeout=2.0) as client:
            return client.get("/api/summary").status_code == 200

    def summary(self) -> dict[str, Any]:
        with self.http() as client:
            answer: dict[str, Any] = client.get("/api/summary").json()
            return answer

    def wait_workers(self, active: int, timeout: float = 30.0) -> None:
        """Until the summary counts at least `active` active workers."""
        wait_for(lambda: self.summary()["workers_active"] >= active, timeout, f"{active} active workers")

    def stop(self, timeout: float = 20.0) -> int | None:
        return super().stop(timeout)
