"""Helpers for the dashboard tests, imported as ``dash_support`` (a name no other test
folder uses). Real processes only: `partisim worker` and `partisim serve` subprocesses
on loopback (127.0.0.93 and 127.0.0.155 stand in for two machines, serve listens on
127.0.0.1), on ports the OS reports free. Readiness is polled with a deadline; every
process is stopped at the end of its test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.workers import RunningWorker, start_worker, wait_for  # noqa: E402

HOST_A = "127.0.0.93"
HOST_B = "127.0.0.155"
SERVE_HOST = "127.0.0.1"


def free_port(host: str = SERVE_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTISIM_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Serve:
    """A `partisim serve` subprocess; `restart()` brings it back on the same port and db."""

    config: Path
    db: Path
    port: int
    log_dir: Path
    popen: subprocess.Popen | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{SERVE_HOST}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.starts += 1
        log = self.log_dir / f"serve-{self.starts}.log"
        self.logs.append(log)
        argv = [sys.executable, "-m", "partisim", "serve", "--config", str(self.config),
                "--db", str(self.db), "--host", SERVE_HOST, "--port", str(self.port)]
        with open(log, "wb") as handle:
            self.popen = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=self.log_dir, env=_clean_env())
        popen = self.popen

        def ready() -> bool:
            if popen.poll() is not None:
                raise AssertionError(f"serve exited with {popen.returncode}:\n{self.output()}")
            return httpx.get(self.url + "/api/health", timeout=2.0, trust_env=False).status_code == 200

        wait_for(ready, timeout, f"partisim serve at {self.url}")

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def kill(self) -> None:
        """SIGKILL: the server vanishes without closing anything."""
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        return self.popen.returncode

    def wait_workers(self, active: int, timeout: float = 30.0) -> None:
        def enough() -> bool:
            summary = httpx.get(self.url + "/api/summary", timeout=2.0, trust_env=False).json()
            return summary["workers_active"] >= active

        wait_for(enough, timeout, f"{active} active workers")


def write_config(path: Path, workers: list[tuple[str, str, int]], **settings: Any) -> Path:
    orchestrator = {"timeout": 2.0, "retry_attempts": 3, "max_concurrent_tasks": 4,
                    "ping_interval": 0.5, "failures_before_inactive": 2, **settings}
    data = {"workers": [{"id": i, "ip": ip, "port": port} for i, ip, port in workers],
            "orchestrator": orchestrator}
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


@dataclass
class Fleet:
    workers: dict[str, RunningWorker]
    serve: Serve


def start_fleet(tmp: Path, hosts: dict[str, str], **settings: Any) -> Fleet:
    workers: dict[str, RunningWorker] = {}
    serve: Serve | None = None
    try:
        for worker_id, host in hosts.items():
            workers[worker_id] = start_worker(host, None, "--capacity", "2", env={"WORKER_ID": worker_id})
        config = write_config(tmp / "config_workers.json",
                              [(i, w.host, w.port) for i, w in workers.items()], **settings)
        serve = Serve(config=config, db=tmp / "partisim.db", port=free_port(), log_dir=tmp)
        serve.start()
        serve.wait_workers(len(workers))
    except BaseException:
        _stop_all(workers, serve)
        raise
    return Fleet(workers, serve)


def stop_fleet(fleet: Fleet) -> None:
    _stop_all(fleet.workers, fleet.serve)


def _stop_all(workers: dict[str, RunningWorker], serve: Serve | None) -> None:
    if serve is not None:
        serve.stop()
    for w in workers.values():
        try:
            w.stop(timeout=10)
        except Exception:
            w.kill()


class EventStream:
    """A real Server-Sent Events client over httpx: ``next()`` returns (event, data)."""

    def __init__(self, url: str, read_timeout: float = 10.0) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, read=read_timeout), trust_env=False)
        self._context = self._client.stream("GET", url, headers={"Accept": "text/event-stream"})
        self.response = self._context.__enter__()
        self._lines = self.response.iter_lines()

    def next(self) -> tuple[str, str] | None:
        """The next event (comments and ``retry:`` skipped); None when the stream ended."""
        event, data = "message", []
        for line in self._lines:
            if line == "":
                if data:
                    return event, "\n".join(data)
                event = "message"
                continue
            if line.startswith(":") or line.startswith("retry:"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        return None

    def until(self, predicate: Any, timeout: float, what: str) -> tuple[str, Any]:
        """Read events until ``predicate(event, decoded_data)`` holds (deadline ``timeout``)."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            item = self.next()
            if item is None:
                raise AssertionError(f"stream ended while waiting for {what}; saw {seen[-3:]}")
            event, raw = item
            data = json.loads(raw)
            seen.append(event)
            if predicate(event, data):
                return event, data
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; saw {seen[-5:]}")

    def close(self) -> None:
        self._context.__exit__(None, None, None)
        self._client.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
