"""Start a real `partisim worker` subprocess on loopback and wait until it answers.

    from helpers.workers import start_worker

    w = start_worker("127.0.0.93", None, "--capacity", "2", env={"WORKER_ID": "worker-01"})
    httpx.get(w.url + "/ping")
    w.stop()      # SIGTERM, graceful; returns the exit code
    w.kill()      # SIGKILL

With `--tls-cert`/`--tls-key` the worker serves https: pass `verify` (a CA file or an
SSL context, e.g. `helpers.tls.make_certificate(...).context()`) so the readiness check
and `.client()` trust it.

`port=None` starts with `--port 0` and reads the port the worker reports, so
there is no race for a free port. Defaults chosen for tests: `--runner process`
(unless a `--runner` is given), a fresh temporary working directory (so no
stray config_workers.json names the worker), and PARTISIM_* / WORKER_ID
variables of the calling environment removed before `env` is applied.
Output goes to a log file in the working directory (`.log_path`, `.log()`).
"""

from __future__ import annotations

import atexit
import re
import shutil
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from helpers.processes import Spawned, clean_env

__all__ = ["RunningWorker", "start_worker", "TINY", "ENDLESS"]

#: the smallest task: done in milliseconds by any engine
TINY = {"NUM_PARTICULAS": 10, "NUM_PASOS": 1, "SEMILLA": 1}
#: a task that would run for many minutes with the python engine
ENDLESS = {"NUM_PARTICULAS": 2000, "NUM_PASOS": 5_000_000, "SEMILLA": 3}

_LISTENING = re.compile(r"Escuchando en (https?)://(\S+):(\d+)")
_OWNED_DIRS: list[Path] = []


@atexit.register
def _remove_owned_dirs() -> None:
    for d in _OWNED_DIRS:
        shutil.rmtree(d, ignore_errors=True)


class RunningWorker(Spawned):
    """A `partisim worker` subprocess (`.proc`, `.log()`, `.stop()`, `.kill()` from `Spawned`)."""

    def __init__(
        self,
        host: str,
        port: int,
        cwd: Path,
        token: str | None = None,
        scheme: str = "http",
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__("worker", cwd)
        self.host = host
        self.port = port
        self.cwd = cwd
        self.token = token
        self.scheme = scheme
        self.verify = verify

    def __repr__(self) -> str:
        return f"RunningWorker(host={self.host!r}, port={self.port}, pid={self.proc.pid if self.proc else None})"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def client(self, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(
            base_url=self.url,
            trust_env=False,
            headers=headers,
            timeout=kw.pop("timeout", 30),
            verify=kw.pop("verify", self.verify),
            **kw,
        )


def start_worker(
    host: str = "127.0.0.1",
    port: int | None = None,
    *extra_args: str,
    env: dict[str, str | None] | None = None,
    cwd: str | Path | None = None,
    ready_timeout: float = 60.0,
    verify: str | ssl.SSLContext | bool = True,
) -> RunningWorker:
    """Start `python -m partisim worker --host HOST --port PORT EXTRA...` and wait for /ping.

    `cwd` (created if missing) also holds the log; by default a fresh temporary directory.
    Raises RuntimeError (with the worker's log) if it exits or never answers; it is then killed.
    """
    if cwd is not None:
        workdir = Path(cwd)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="partisim-worker-"))
        _OWNED_DIRS.append(workdir)
    full_env = clean_env(PYTHONUNBUFFERED="1", **(env or {}))
    args = list(extra_args)
    if "--runner" not in args and "PARTISIM_RUNNER" not in full_env:
        args += ["--runner", "process"]
    argv = [
        sys.executable,
        "-m",
        "partisim",
        "worker",
        "--host",
        host,
        "--port",
        str(0 if port is None else port),
        *args,
    ]
    tls = "--tls-cert" in args or "PARTISIM_TLS_CERT" in full_env
    if isinstance(verify, str):  # a CA file: httpx wants an SSL context
        verify = ssl.create_default_context(cafile=verify)
    worker = RunningWorker(
        host, port or 0, workdir, token=full_env.get("PARTISIM_TOKEN"), scheme="https" if tls else "http", verify=verify
    )
    worker.name = f"worker on {host}:{port or '?'}"
    worker.launch(argv, cwd=workdir, env=full_env)

    def ready() -> bool:
        if not worker.port:
            match = _LISTENING.search(worker.log())
            if not match:
                return False
            worker.port = int(match.group(3))
        return httpx.get(worker.url + "/ping", timeout=2.0, trust_env=False, verify=verify).status_code == 200

    worker.wait_ready(ready, ready_timeout)
    return worker
