"""Helpers for the queue tests: real workers, ``partisim serve``, a misbehaving proxy.

Processes are started by the shared helpers (tests/helpers/); `Cluster` owns the
ones of a test and guarantees they are gone at its end. Everything listens on
127.0.0.0/8 only, and logs go to the Cluster's directory.
"""

from __future__ import annotations

import sqlite3
import ssl
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from helpers.cli import run_cli as run_in_process
from helpers.config import write_config
from helpers.processes import Spawned, clean_env, free_port_on
from helpers.serve import Serve
from helpers.workers import RunningWorker, start_worker

from partisim.orchestrator.batches import wait_batch as client_wait_batch
from partisim.protocol import Summary
from partisim.serve.client import ServerClient
from partisim.serve.queue.store import TaskQueue

HERE = Path(__file__).parent

#: serve notices a dead worker within a second or so
QUEUE_SETTINGS = {"ping_interval": 0.3, "failures_before_inactive": 2}


class Proxy(Spawned):
    """tests/queue/flaky_proxy.py in front of a worker."""

    def __init__(self, url: str, log_dir: Path, mode: str) -> None:
        super().__init__(f"proxy-{mode}", log_dir)
        self.url = url


class Cluster:
    """Starts processes and guarantees they are gone at the end of the test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[Spawned] = []
        self._configs = 0

    def worker(
        self,
        host: str,
        worker_id: str,
        *,
        capacity: int = 2,
        extra: tuple[str, ...] = (),
        port: int | None = None,
        env: dict[str, str | None] | None = None,
    ) -> RunningWorker:
        workdir = self.tmp / f"{worker_id}-{len(self.procs)}"
        worker = start_worker(
            host,
            port,
            "--capacity",
            str(capacity),
            "--worker-id",
            worker_id,
            "--runner",
            "process",
            *extra,
            cwd=workdir,
            ready_timeout=30,
            env=env,
        )
        self.procs.append(worker)
        return worker

    def proxy(
        self,
        target: RunningWorker,
        *,
        mode: str,
        rate: float = 0.3,
        seed: int = 7,
        host: str = "127.0.0.1",
        delay: float = 0.0,
        times: int = 0,
        tls: tuple[Path, Path] | None = None,
    ) -> Proxy:
        """flaky_proxy.py in front of ``target``; ``tls=(cert, key)`` makes it an https front."""
        port = free_port_on(host)
        proxy = Proxy(f"{'https' if tls else 'http'}://{host}:{port}", self.tmp, mode)
        self.procs.append(proxy)
        argv = [
            sys.executable,
            str(HERE / "flaky_proxy.py"),
            "--host",
            host,
            "--port",
            str(port),
            "--target",
            target.url,
            "--mode",
            mode,
            "--rate",
            str(rate),
            "--seed",
            str(seed),
            "--delay",
            str(delay),
            "--times",
            str(times),
        ]
        if tls is not None:
            argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        proxy.launch(argv, cwd=self.tmp)
        verify = ssl.create_default_context(cafile=str(tls[0])) if tls else True
        proxy.wait_ready(
            lambda: (
                httpx.get(proxy.url + "/proxy/stats", timeout=2.0, trust_env=False, verify=verify).status_code == 200
            ),
            30,
        )
        return proxy

    def config(self, workers: list[tuple[str, str]], **settings: Any) -> Path:
        """config-N.json in the Cluster's directory for ``[(worker_id, url), ...]``."""
        self._configs += 1
        return write_config(self.tmp / f"config-{self._configs}.json", workers, **{**QUEUE_SETTINGS, **settings})

    def serve(
        self, config: Path, db: Path, *, inbox: Path | None = None, wait_workers: int | None = None, **kw: Any
    ) -> Serve:
        """``kw``: token, tls, extra, env (see `helpers.serve.Serve`)."""
        serve = Serve(config, db, workdir=self.tmp, inbox=inbox, **kw)
        self.procs.append(serve)
        serve.start()
        if wait_workers:
            serve.wait_workers(wait_workers, timeout=20)
        return serve

    def stop_all(self) -> None:
        for proc in reversed(self.procs):  # serve first, then what it talks to
            proc.terminate()
        for proc in self.procs:
            proc.stop(timeout=15)


def claim(queue: TaskQueue, task_id: str, worker: str, worker_url: str, deadline: float) -> int | None:
    """One task queued -> running, through the store's one claim (``claim_many``)."""
    return queue.claim_many([(task_id, worker, worker_url, deadline)])[0]


def write_foreign_sqlite(path: Path) -> None:
    """A SQLite file that is not partisim's: one ``users`` table with one row."""
    con = sqlite3.connect(path)
    with con:
        con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        con.execute("INSERT INTO users (name) VALUES ('ana')")
    con.close()


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "partisim", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=input,
        timeout=timeout,
        env=clean_env(**{"COLUMNS": "200", **(env or {})}),
        stdin=subprocess.DEVNULL if input is None else None,
    )


def run_here(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``run_cli`` in this process (`helpers.cli.run_cli`): for messages, exit codes and
    output, where a process of its own adds nothing."""
    return run_in_process(*args, cwd=cwd, env={"COLUMNS": "200", **(env or {})}, input=input or "")


def wait_batch(client: ServerClient, batch: str | None, timeout: float) -> Summary:
    """The client's own long-poll wait, failing the test when the batch takes too long."""
    try:
        return client_wait_batch(client, batch, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"batch {batch} not done in {timeout}s: {client.summary(batch=batch)}") from None


def worker_history(proc: RunningWorker) -> list[dict[str, Any]]:
    answer = httpx.get(proc.url + "/history", params={"limit": 1000}, timeout=10, trust_env=False).json()
    return answer.get("tasks", answer.get("history", [])) if isinstance(answer, dict) else answer


def successes_per_task(*workers: RunningWorker) -> Counter[str]:
    """How many successful executions of each task id the workers' own histories report."""
    return Counter(
        item["task_id"] for proc in workers for item in worker_history(proc) if item.get("status") == "success"
    )


def worker_task_status(proc: RunningWorker, task_id: str) -> str | None:
    """The task's status as the worker itself sees it (None while it does not know it)."""
    answer = httpx.get(f"{proc.url}/tasks/{task_id}", timeout=10, trust_env=False)
    return answer.json().get("status") if answer.status_code == 200 else None
