"""Local workers: K ``partisim worker`` subprocesses on 127.0.0.1 free ports.

``partisim demo --local K`` uses them so the demo runs on a fresh machine with no
setup. ``LocalWorkers`` is a context manager: it starts the processes, waits until
each answers ``/ping`` (with a deadline), writes a matching configuration file, and
stops them on exit, including on Ctrl-C. Each worker runs in its own session, so a
Ctrl-C in the terminal reaches only us and we stop them in order; stopping signals
the whole process group, so no task process outlives its worker. On Linux the
children also get ``PR_SET_PDEATHSIG`` so they die with this process even if it is
killed outright.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from partisim.errors import LocalWorkersError, PartisimError
from partisim.fleet.client import WorkerClient
from partisim.sim.environment import usable_cpus

__all__ = ["LocalWorker", "LocalWorkers", "free_port"]

log = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"


def free_port(host: str = LOCAL_HOST) -> int:
    """A port the OS reports free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not glibc: workers then outlive a killed parent, as on other systems
        return None


# Loaded in the parent: the child, between fork and exec, only makes the one call.
_LIBC: ctypes.CDLL | None = _load_libc() if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    if _LIBC is not None:  # given as preexec_fn only then
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class LocalWorker:
    id: str
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds, to the whole process group.

        Idempotent: once reaped, the pid (= group id) may belong to someone else."""
        if self._stopped:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Also when the worker already exited: a task process may still be running.
        self._signal_group(getattr(signal, "SIGKILL", signal.SIGTERM))
        self.proc.wait()
        self._stopped = True
        if self._log is not None:
            self._log.close()
            self._log = None

    def _signal_group(self, sig: int) -> None:
        if not hasattr(os, "killpg"):  # Windows: no process groups to signal
            if self.proc.poll() is None:
                self.proc.terminate()
            return
        try:
            os.killpg(self.proc.pid, sig)  # own session: the group id is its pid
        except (ProcessLookupError, PermissionError):
            pass


class LocalWorkers:
    """Start ``count`` local workers; use as ``with LocalWorkers(2) as lw: ...``.

    They use the process runner by default: a fresh machine needs no Docker image. They
    share this machine's CPUs, so each gets ``capacity`` slots, by default this process's
    usable CPUs divided among them (at least one): two workers of 2 slots each on 2 cores
    ran 4 simulations at once, and every result was flagged as measured on a busy machine.
    """

    def __init__(
        self,
        count: int,
        *,
        host: str = LOCAL_HOST,
        startup_timeout: float = 60.0,
        extra_args: tuple[str, ...] = ("--runner", "process"),
        workdir: Path | None = None,
        python: str | None = None,
        capacity: int | None = None,
    ) -> None:
        if count < 1:
            raise LocalWorkersError("el número de workers locales debe ser al menos 1")
        self.count = count
        self.capacity = capacity or max(1, usable_cpus() // count)
        self.host = host
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args
        self.python = python or sys.executable
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="partisim-local-"))
        self.workers: list[LocalWorker] = []

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> LocalWorkers:
        atexit.register(self.stop)
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        atexit.unregister(self.stop)

    def start(self) -> list[LocalWorker]:
        for index in range(1, self.count + 1):
            self.workers.append(self._spawn(f"local-{index:02d}"))
        self._wait_ready()
        return self.workers

    def stop(self) -> None:
        """Stop every worker (idempotent) and remove the temporary folder."""
        for worker in self.workers:
            try:
                worker.stop()
            except Exception:  # keep stopping the others
                log.exception("no se pudo detener %s", worker.id)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- helpers -------------------------------------------------------------

    def write_config(self, path: Path | None = None, *, timeout: float = 5.0) -> Path:
        """A ``config_workers.json`` naming these workers; returns its path."""
        path = path or self.workdir / "config_workers.json"
        data = {
            "workers": [{"id": w.id, "ip": w.host, "port": w.port} for w in self.workers],
            "orchestrator": {
                "timeout": timeout,
                "retry_attempts": 3,
                "max_concurrent_tasks": max(4, self.count * 2),
            },
        }
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path

    def _spawn(self, worker_id: str, port: int | None = None) -> LocalWorker:
        port = port or free_port(self.host)
        log_path = self.workdir / f"{worker_id}.log"
        log_file = open(log_path, "ab")  # noqa: SIM115 -- LocalWorker owns it and closes it on stop
        env = dict(os.environ, WORKER_ID=worker_id, PYTHONUNBUFFERED="1")
        cmd = [
            self.python,
            "-m",
            "partisim",
            "worker",
            "--host",
            self.host,
            "--port",
            str(port),
            "--capacity",
            str(self.capacity),
            *self.extra_args,
        ]
        log.debug("iniciando %s: %s", worker_id, " ".join(cmd))
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
            start_new_session=True,
            # one prctl call through a libc loaded beforehand: nothing that a parent thread could hold
            preexec_fn=_die_with_parent if _LIBC is not None else None,  # noqa: PLW1509
        )
        return LocalWorker(worker_id, self.host, port, proc, log_path, log_file)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        waiting = list(range(len(self.workers)))
        respawns = 0
        while waiting:
            for index in list(waiting):
                worker = self.workers[index]
                if not worker.alive():
                    # Most likely someone took the port between our check and the bind.
                    if respawns >= 3 * self.count:
                        raise LocalWorkersError(
                            f"el worker local {worker.id} terminó al arrancar "
                            f"(código {worker.proc.returncode}):\n{worker.log_tail()}"
                        )
                    respawns += 1
                    worker.stop()
                    self.workers[index] = self._spawn(worker.id)
                    continue
                if _answers(worker.url):
                    waiting.remove(index)
            if not waiting:
                break
            if time.monotonic() > deadline:
                names = ", ".join(self.workers[i].id for i in waiting)
                raise LocalWorkersError(
                    f"los workers locales ({names}) no respondieron en {self.startup_timeout:.0f} s"
                )
            # Poll interval: wait on a pending child, so an early exit is seen at once.
            try:
                self.workers[waiting[0]].proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass


def _answers(url: str) -> bool:
    try:
        with WorkerClient(url, timeout=1.0) as client:
            client.ping()
        return True
    except PartisimError:
        return False
