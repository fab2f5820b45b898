"""Helpers for the orchestrator tests (imported by conftest and the tests).

Two workers stand in for two machines: HOST_A and HOST_B (tests/helpers/processes.py),
on the SAME port (picked free on both addresses). Commands run as real subprocesses
(`run`) or in this process (`run_here`, `helpers.cli.run_cli`).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from helpers.cli import run_cli
from helpers.config import write_config
from helpers.processes import HOST_A, HOST_B, clean_env, free_port_on
from helpers.terminal import ANSI, PtySession, clean
from helpers.workers import RunningWorker, start_worker

__all__ = [
    "ANSI",
    "CLI_ENV",
    "ROOT",
    "Pair",
    "PtySession",
    "assert_clean_exit",
    "clean",
    "launch_worker",
    "run",
    "run_here",
    "run_many",
    "start_pair",
    "stop_pair",
]

ROOT = Path(__file__).resolve().parents[2]

# Wide, colourless output so tables are never truncated in assertions.
CLI_ENV = clean_env(COLUMNS="200", NO_COLOR="1", PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")


def launch_worker(host: str, port: int | None, worker_id: str, cwd: Path | None = None) -> RunningWorker:
    """A real worker (process runner) answering on host:port as ``worker_id`` (port None: one it picks)."""
    return start_worker(host, port, "--runner", "process", env={"WORKER_ID": worker_id}, cwd=cwd)


def run(
    args: list[str],
    *,
    input: str | None = None,
    cwd: Path | None = None,
    timeout: float = 90,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (``partisim ...`` via the current interpreter, or a script)."""
    if args and args[0].endswith(".py"):
        cmd = [sys.executable, str(ROOT / args[0]), *args[1:]]
    else:
        cmd = [sys.executable, "-m", "partisim", *args]
    return subprocess.run(
        cmd,
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
        env=env or CLI_ENV,
    )


def run_here(args: list[str], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``run`` in this process, with the variables of CLI_ENV that shape the output (and ``env``)."""
    return run_cli(*args, env={"COLUMNS": "200", "NO_COLOR": "1", **(env or {})}, cwd=ROOT)


def run_many(commands: list[list[str]], **kwargs: object) -> list[subprocess.CompletedProcess[str]]:
    """``run`` for several commands at once (they mostly wait on start-up and the network)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda c: run(c, **kwargs), commands))  # type: ignore[arg-type]


def assert_clean_exit(proc: subprocess.CompletedProcess[str], code: int) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == code, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


@dataclass
class Pair:
    """Two real workers, worker-01 on HOST_A and worker-02 on HOST_B, same port."""

    port: int
    a: RunningWorker
    b: RunningWorker
    config: Path

    @property
    def workers(self) -> dict[str, RunningWorker]:
        return {"worker-01": self.a, "worker-02": self.b}


def start_pair(tmp: Path) -> Pair:
    """worker-01 on HOST_A and worker-02 on HOST_B, same port, started concurrently."""
    from concurrent.futures import ThreadPoolExecutor

    for _ in range(5):
        port = free_port_on(HOST_A, HOST_B)
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(launch_worker, host, port, wid, tmp / wid)
                for host, wid in ((HOST_A, "worker-01"), (HOST_B, "worker-02"))
            ]
        started = [f.result() for f in futures if f.exception() is None]
        if len(started) == 2:
            config = write_config(
                tmp / "config_workers.json", [("worker-01", HOST_A, port), ("worker-02", HOST_B, port)]
            )
            return Pair(port, started[0], started[1], config)
        for w in started:  # someone took the port in between: try another
            w.kill()
    raise RuntimeError("could not start two workers")


def stop_pair(pair: Pair) -> None:
    for w in (pair.a, pair.b):
        w.stop()
