"""`ProcessRunner`: each job in a warm child process of `partisim.sim.isolated`'s pool.

The pool is the project's one killable child-process pool; this module only adapts it
to asyncio and to the worker's errors. One child per slot: a child that times out,
crashes or is cancelled is killed and replaced, so nothing of a bad task survives it
and the worker goes on serving.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from concurrent.futures import ThreadPoolExecutor

from partisim.errors import ParamsError, TaskTimedOut, WorkerFailed, WorkerUnavailable
from partisim.sim import SimResult
from partisim.sim.isolated import ChildPool, IsolatedRun
from partisim.worker.runners.base import Job, OnStarted, RunHandle, Runner

__all__ = ["ProcessRunner"]


class ProcessRunner(Runner):
    """Each job in a process of a warm pool; a bad job only takes its own process down."""

    name = "process"

    def __init__(self, capacity: int, *, task_memory_mb: int | None = None) -> None:
        self.capacity = capacity
        self.task_memory_mb = task_memory_mb
        self._pool = ChildPool(keep=capacity, memory_mb=task_memory_mb)
        # one waiting thread per running job (the caller runs at most `capacity`), and one
        # more for warming the pool
        self._threads = ThreadPoolExecutor(max_workers=capacity + 1, thread_name_prefix="partisim-run")
        self._closed = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._threads, self._pool.warm, self.capacity)
        except OSError as exc:
            raise WorkerUnavailable(f"no se pudo iniciar ningún proceso de tareas: {exc}") from None

    async def ensure_ready(self) -> None:
        if self._closed:
            raise WorkerUnavailable("el worker se está deteniendo")

    async def run(self, job: Job, on_started: OnStarted | None = None) -> SimResult:
        await self.ensure_ready()
        loop = asyncio.get_running_loop()

        def started(pid: int) -> None:  # called in the waiting thread
            if on_started is not None:
                loop.call_soon_threadsafe(on_started, RunHandle(pid=pid))

        key = f"{job.task_id}-{secrets.token_hex(4)}"
        waiting = loop.run_in_executor(
            self._threads,
            functools.partial(
                self._pool.run, job.params, job.engine, job.timeout, threads=job.threads, key=key, on_started=started
            ),
        )
        try:
            run = await asyncio.shield(waiting)
        except asyncio.CancelledError:  # the child may be mid-task: kill it before giving up
            self._pool.stop(key)
            await asyncio.wait([waiting])
            raise
        return _outcome(run, job)

    async def close(self) -> None:
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._pool.close)
        self._threads.shutdown(wait=False, cancel_futures=True)


def _outcome(run: IsolatedRun, job: Job) -> SimResult:
    """The result of a run, or the worker's error for why there is none."""
    if run.status == "success" and run.result is not None:
        return run.result
    if run.status == "timeout":
        raise TaskTimedOut(f"la tarea superó su tiempo límite de {job.timeout:g} s y se detuvo")
    if run.status == "invalid":
        raise ParamsError(run.message)
    if run.status == "cancelled":  # stopped from outside the worker's own cancel path
        raise WorkerFailed(run.message, 500)
    if run.pid is None:  # no child could be started for it
        raise WorkerUnavailable(f"no se pudo iniciar un proceso de tareas: {run.message}")
    raise WorkerFailed(f"la simulación falló: {run.message}; el worker sigue activo", 500)
