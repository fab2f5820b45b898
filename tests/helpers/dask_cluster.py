"""A real Dask cluster on loopback: `dask scheduler` and `dask worker` subprocesses.

    from helpers.dask_cluster import DaskScheduler, DaskWorker

    scheduler = DaskScheduler(log_dir).start()            # --port 0: the port is read from its log
    worker = DaskWorker(scheduler.address, log_dir, "w1").start()   # 1 thread, no nanny
    worker.kill()                                         # kill -9, as a machine that dies
    DaskWorker(scheduler.address, log_dir, "bare", with_partisim=False).start()

Workers run without a nanny, so `kill()` takes the worker itself down at once (the
scheduler sees its connection close), as when its machine dies. A worker started
``with_partisim=False`` runs the same interpreter with ``-S`` and only this
environment's site-packages on PYTHONPATH: dask and distributed import, but the
editable install's path file is not read, so partisim cannot be imported there.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

from helpers.processes import SERVE_HOST, Spawned, clean_env

__all__ = ["DaskScheduler", "DaskWorker", "DASK_BIN"]

DASK_BIN = str(Path(sys.executable).parent / "dask")
_SCHEDULER_AT = re.compile(r"Scheduler at:\s+(tcp://[0-9.]+:\d+)")
_WORKER_AT = re.compile(r"Start worker at:\s+(tcp://[0-9.]+:\d+)")


def _found(proc: Spawned, pattern: re.Pattern[str]) -> str | None:
    match = pattern.search(proc.log())
    return match.group(1) if match else None


class DaskScheduler(Spawned):
    def __init__(self, log_dir: Path) -> None:
        super().__init__("dask-scheduler", log_dir)
        self.address = ""

    def start(self, timeout: float = 60.0) -> DaskScheduler:
        self.launch(
            [DASK_BIN, "scheduler", "--host", SERVE_HOST, "--port", "0", "--dashboard-address", f"{SERVE_HOST}:0"],
            cwd=self.log_dir,
        )
        self.address = self.wait_ready(lambda: _found(self, _SCHEDULER_AT), timeout)
        return self


class DaskWorker(Spawned):
    def __init__(self, scheduler: str, log_dir: Path, name: str, *, with_partisim: bool = True) -> None:
        super().__init__(f"dask-worker-{name}", log_dir)
        self.scheduler = scheduler
        self.worker_name = name
        self.with_partisim = with_partisim
        self.address = ""

    def start(self, timeout: float = 60.0) -> DaskWorker:
        options = [
            self.scheduler,
            "--nthreads",
            "1",
            "--no-nanny",
            "--host",
            SERVE_HOST,
            "--no-dashboard",
            "--name",
            self.worker_name,
        ]
        if self.with_partisim:
            self.launch([DASK_BIN, "worker", *options], cwd=self.log_dir)
        else:
            env = clean_env(PYTHONUNBUFFERED="1", PYTHONPATH=sysconfig.get_paths()["purelib"])
            self.launch(
                [sys.executable, "-S", "-m", "distributed.cli.dask_worker", *options], cwd=self.log_dir, env=env
            )
        self.address = self.wait_ready(lambda: "Registered to" in self.log() and _found(self, _WORKER_AT), timeout)
        return self
