"""Helpers for the queue tests: real workers, ``partisim serve``, a misbehaving proxy.

Everything listens on 127.0.0.0/8 only (127.0.0.93 and 127.0.0.155 stand in for two
machines), on ports the OS reports free. Readiness is polled with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from partisim.orchestrator.server_client import ServerClient

HERE = Path(__file__).parent
HOST_A = "127.0.0.93"
HOST_B = "127.0.0.155"
SERVE_HOST = "127.0.0.1"
TINY = {"NUM_PARTICULAS": 10, "NUM_PASOS": 1, "SEMILLA": 1}


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (httpx.HTTPError, OSError, ValueError) as exc:
            last_error = exc
        time.sleep(interval)  # polling interval, not synchronisation: the deadline decides
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    url: str
    log: Path

    def kill9(self) -> None:
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Cluster:
    """Starts processes and guarantees they are gone at the end of the test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[Proc] = []

    def _spawn(self, name: str, argv: list[str], url: str, ready_path: str, timeout: float = 30.0,
               env: dict[str, str] | None = None) -> Proc:
        log = self.tmp / f"{name}-{len(self.procs)}.log"
        handle = open(log, "wb")
        popen = subprocess.Popen(
            argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        handle.close()
        proc = Proc(name, popen, url, log)
        self.procs.append(proc)

        def ready() -> bool:
            if popen.poll() is not None:
                raise AssertionError(f"{name} exited with {popen.returncode}:\n{proc.output()}")
            return httpx.get(url + ready_path, timeout=2.0, trust_env=False).status_code == 200

        wait_until(ready, timeout, f"{name} at {url}")
        return proc

    def worker(self, host: str, worker_id: str, *, capacity: int = 2, extra: tuple[str, ...] = (),
               port: int | None = None) -> Proc:
        port = port or free_port(host)
        argv = [sys.executable, "-m", "partisim", "worker", "--host", host, "--port", str(port),
                "--capacity", str(capacity), "--worker-id", worker_id, "--runner", "process", *extra]
        return self._spawn(worker_id, argv, f"http://{host}:{port}", "/ping")

    def proxy(self, target: Proc, *, mode: str, rate: float = 0.3, seed: int = 7, host: str = "127.0.0.1") -> Proc:
        port = free_port(host)
        argv = [sys.executable, str(HERE / "flaky_proxy.py"), "--host", host, "--port", str(port),
                "--target", target.url, "--mode", mode, "--rate", str(rate), "--seed", str(seed)]
        return self._spawn(f"proxy-{mode}", argv, f"http://{host}:{port}", "/proxy/stats")

    def config(self, workers: list[tuple[str, str]], **settings: Any) -> Path:
        """config_workers.json for ``[(worker_id, url), ...]``."""
        entries = []
        for worker_id, url in workers:
            host, port = url.split("://", 1)[1].rsplit(":", 1)
            entries.append({"id": worker_id, "ip": host, "port": int(port)})
        orchestrator = {"timeout": 5.0, "retry_attempts": 3, "max_concurrent_tasks": 4,
                        "ping_interval": 0.3, "failures_before_inactive": 2, **settings}
        path = self.tmp / f"config-{len(self.procs)}.json"
        path.write_text(json.dumps({"workers": entries, "orchestrator": orchestrator}), encoding="utf-8")
        return path

    def serve(self, config: Path, db: Path, *, port: int | None = None, inbox: Path | None = None,
              wait_workers: int | None = None) -> Proc:
        port = port or free_port(SERVE_HOST)
        argv = [sys.executable, "-m", "partisim", "serve", "--config", str(config), "--db", str(db),
                "--host", SERVE_HOST, "--port", str(port)]
        if inbox is not None:
            argv += ["--inbox", str(inbox)]
        proc = self._spawn("serve", argv, f"http://{SERVE_HOST}:{port}", "/api/summary")
        if wait_workers:
            with ServerClient(proc.url) as client:
                wait_until(lambda: client.summary()["workers_active"] >= wait_workers, 20, "active workers")
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.popen.poll() is None:
                proc.popen.terminate()
        for proc in self.procs:
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=5)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "partisim", *args], capture_output=True, text=True, cwd=cwd, input=input,
        timeout=timeout, env={**os.environ, "COLUMNS": "200", **(env or {})},
        stdin=subprocess.DEVNULL if input is None else None,
    )


def wait_batch(client: ServerClient, batch: str | None, timeout: float) -> dict[str, Any]:
    """Long-poll the summary until the batch has nothing queued or running."""
    deadline = time.monotonic() + timeout
    state = client.summary(batch=batch)
    while not state["done"]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"batch {batch} not done in {timeout}s: {state}")
        state = client.summary(batch=batch, wait=min(2.0, left))
    return state


def worker_history(proc: Proc) -> list[dict[str, Any]]:
    answer = httpx.get(proc.url + "/history", params={"limit": 1000}, timeout=10, trust_env=False).json()
    return answer.get("tasks", answer.get("history", [])) if isinstance(answer, dict) else answer


def worker_task_status(proc: Proc, task_id: str) -> str | None:
    """The task's status as the worker itself sees it (None while it does not know it)."""
    answer = httpx.get(f"{proc.url}/tasks/{task_id}", timeout=10, trust_env=False)
    return answer.json().get("status") if answer.status_code == 200 else None
