"""Generic bits for tests that run real processes on loopback.

    from helpers.processes import HOST_A, HOST_B, clean_env, free_port_on, wait_for

- `HOST_A`, `HOST_B` stand in for two machines, `SERVE_HOST` is where `partisim serve`
  listens: addresses in 127.0.0.0/8 only.
- `free_port_on(*hosts)`: a port free right now on every one of the hosts.
- `wait_for(predicate, timeout, what)`: poll a condition with a deadline (never a fixed sleep).
- `clean_env(**extra)`: this environment without PARTISIM_* and WORKER_ID, plus `extra`.
- `pid_gone(pid)`: the process has exited.
- `Spawned`: a subprocess whose output goes to log files (never to a pipe that could
  fill), with `log()`, `stop()` (SIGTERM, graceful) and `kill()` (SIGKILL).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from typing_extensions import Self

__all__ = ["HOST_A", "HOST_B", "SERVE_HOST", "clean_env", "pid_gone", "wait_for", "free_port_on", "answers", "Spawned"]

HOST_A = "127.0.0.93"
HOST_B = "127.0.0.155"
SERVE_HOST = "127.0.0.1"


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


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy (returned); AssertionError after `timeout` s.

    HTTP, OS and value errors raised by `predicate` count as "not yet" (the last one is reported).
    """
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
    hosts = hosts or (SERVE_HOST,)
    for _ in range(200):
        socks: list[socket.socket] = []
        try:
            first = socket.socket()
            socks.append(first)
            first.bind((hosts[0], 0))
            port: int = first.getsockname()[1]
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


def answers(url: str) -> bool:
    """GET `url` answers 200 (no proxy from the environment)."""
    return httpx.get(url, timeout=2.0, trust_env=False).status_code == 200


class Spawned:
    """A subprocess whose stdout and stderr go to a log file in `log_dir`.

    `launch()` may be called again once the process is gone (a restart): `log()` then
    returns the logs of every run, in order.
    """

    def __init__(self, name: str, log_dir: str | Path) -> None:
        self.name = name
        self.log_dir = Path(log_dir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_paths: list[Path] = []

    def launch(self, argv: Sequence[str], *, cwd: str | Path, env: dict[str, str] | None = None) -> None:
        """Start `argv` (env defaults to `clean_env(PYTHONUNBUFFERED="1")`)."""
        prefix = re.sub(r"[^\w.-]+", "-", self.name).strip("-") + "-"
        fd, log_name = tempfile.mkstemp(prefix=prefix, suffix=".log", dir=self.log_dir)
        os.close(fd)
        self.log_paths.append(Path(log_name))
        with open(log_name, "wb") as log:
            self.proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=clean_env(PYTHONUNBUFFERED="1") if env is None else env,
            )

    @property
    def log_path(self) -> Path:
        """The log of the current (latest) run."""
        return self.log_paths[-1]

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def log(self) -> str:
        parts = []
        for path in self.log_paths:
            try:
                parts.append(path.read_text(encoding="utf-8", errors="replace"))
            except OSError:
                pass
        return "\n".join(parts)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, predicate: Callable[[], Any], timeout: float) -> Any:
        """`wait_for(predicate)` while the process runs. RuntimeError with the log if it
        exits first or is not ready in time (the process is then killed)."""

        def check() -> Any:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(f"{self.name} exited with code {code} before answering:\n{self.log()}")
            return predicate()

        try:
            return wait_for(check, timeout, self.name)
        except AssertionError as exc:
            self.kill()
            raise RuntimeError(f"{exc}\n--- {self.name} log ---\n{self.log()}") from None
        except BaseException:
            self.kill()
            raise

    def terminate(self) -> None:
        """SIGTERM, without waiting."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout`); the exit code (None if never started)."""
        if self.proc is None:
            return None
        self.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a machine that dies would; reaped before returning."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.alive():
            try:
                self.stop(timeout=15)
            finally:
                self.kill()
