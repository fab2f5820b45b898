"""Start a real `partisim worker` subprocess on loopback and wait until it answers.

    from helpers.workers import start_worker, free_port_on

    w = start_worker("127.0.0.93", None, "--capacity", "2", env={"WORKER_ID": "worker-01"})
    httpx.get(w.url + "/ping")
    w.stop()      # SIGTERM, graceful; returns the exit code
    w.kill()      # SIGKILL

`port=None` starts with `--port 0` and reads the port the worker reports, so
there is no race for a free port. Defaults chosen for tests: `--runner process`
(unless a `--runner` is given), a fresh temporary working directory (so no
stray config_workers.json names the worker), and PARTISIM_* / WORKER_ID
variables of the calling environment removed before `env` is applied.
Output goes to a log file (`.log_path`, `.log()`), never to a pipe that could fill.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["RunningWorker", "start_worker", "free_port_on", "wait_for", "clean_env", "pid_gone"]

_LISTENING = re.compile(r"Escuchando en http://(\S+):(\d+)")
_OWNED_DIRS: list[Path] = []


@atexit.register
def _remove_owned_dirs() -> None:
    for d in _OWNED_DIRS:
        shutil.rmtree(d, ignore_errors=True)


def clean_env(**extra: str | None) -> dict[str, str]:
    """This environment without PARTISIM_* and WORKER_ID, then `extra` applied (None removes a variable)."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("PARTISIM_") or k == "WORKER_ID")}
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def pid_gone(pid: int) -> bool:
    """The process has exited (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0): it is gone if /proc says so
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].startswith("Z")
    except OSError:
        return True


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    """Poll `predicate` until it returns something truthy; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (httpx.HTTPError, OSError, ValueError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last!r})")
        time.sleep(interval)  # polling interval only; the deadline decides


def free_port_on(*hosts: str) -> int:
    """A port free right now on every one of `hosts` (e.g. two workers on one port)."""
    for _ in range(200):
        socks: list[socket.socket] = []
        try:
            first = socket.socket()
            socks.append(first)
            first.bind((hosts[0], 0))
            port = first.getsockname()[1]
            for host in hosts[1:]:
                s = socket.socket()
                socks.append(s)
                s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no port is free on all of " + ", ".join(hosts))


@dataclass
class RunningWorker:
    proc: subprocess.Popen
    host: str
    port: int
    log_path: Path
    cwd: Path
    token: str | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def client(self, **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, trust_env=False, headers=headers, timeout=kw.pop("timeout", 30), **kw)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait (SIGKILL after `timeout`); the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a machine that dies would."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def __enter__(self) -> RunningWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.alive():
            try:
                self.stop(timeout=15)
            finally:
                self.kill()


def start_worker(host: str = "127.0.0.1", port: int | None = None, *extra_args: str,
                 env: dict[str, str | None] | None = None, cwd: str | Path | None = None,
                 ready_timeout: float = 60.0) -> RunningWorker:
    """Start `python -m partisim worker --host HOST --port PORT EXTRA...` and wait for /ping.

    Raises RuntimeError (with the worker's log) if it exits or never answers.
    """
    if cwd is not None:
        workdir = Path(cwd)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="partisim-worker-"))
        _OWNED_DIRS.append(workdir)
    log_path = Path(tempfile.mkstemp(prefix="worker-", suffix=".log", dir=workdir)[1])
    full_env = clean_env(PYTHONUNBUFFERED="1", **(env or {}))
    args = list(extra_args)
    if "--runner" not in args and "PARTISIM_RUNNER" not in full_env:
        args += ["--runner", "process"]
    argv = [sys.executable, "-m", "partisim", "worker", "--host", host,
            "--port", str(0 if port is None else port), *args]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=workdir, env=full_env)
    worker = RunningWorker(proc, host, port or 0, log_path, workdir, token=full_env.get("PARTISIM_TOKEN"))

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with code {proc.returncode} before answering:\n{worker.log()}")
        if not worker.port:
            match = _LISTENING.search(worker.log())
            if not match:
                return False
            worker.port = int(match.group(2))
        return httpx.get(worker.url + "/ping", timeout=2.0, trust_env=False).status_code == 200

    try:
        wait_for(ready, ready_timeout, f"worker on {host}:{port or '?'}")
    except BaseException as exc:
        worker.kill()
        if isinstance(exc, AssertionError):
            raise RuntimeError(f"{exc}\n--- worker log ---\n{worker.log()}") from None
        raise
    return worker
