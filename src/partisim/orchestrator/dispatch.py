"""Direct dispatch: one task on one chosen worker, and a small thread pool to do that
on several workers at once. The demo, the communication check, the menu and
`partisim exec` use it; `partisim serve` uses its own scheduler instead.

Why the two differ, in one place: the direct tools answer "what does *this* worker
do?" -- the user picked the worker, so a failure is shown as it happened, with one
attempt and no retry elsewhere (a retry would hide what was asked for). The queue of
`partisim serve` answers "get this work done": it places each task on the worker with
the most free slots, retries connection errors, 5xx and timeouts on another worker
with backoff, and fails a 4xx at once (see `serve.scheduler`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from partisim.errors import PartisimError, TaskRejected, TaskTimedOut, WorkerUnavailable
from partisim.fleet.client import WorkerClient
from partisim.fleet.legacy import legacy_problem, legacy_request
from partisim.protocol import ExecuteRequest, ExecuteResult, ForeignResult, TaskResult
from partisim.sim import SimParams

__all__ = [
    "DEFAULT_PARAMS",
    "EngineRun",
    "DemoRow",
    "execute_on",
    "execute_any",
    "explain_task_error",
    "run_parallel",
    "run_seconds",
]

log = logging.getLogger(__name__)

#: The users' own example: 100 particles, 500 steps, seed 42 (demo, menu, check).
DEFAULT_PARAMS: dict[str, int] = {"NUM_PARTICULAS": 100, "NUM_PASOS": 500, "SEMILLA": 42}

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(func: Callable[[T], R], items: Iterable[T], *, limit: int) -> list[R]:
    """``func`` over ``items`` in threads, at most ``limit`` at once; results in order.

    Daemon threads rather than a ThreadPoolExecutor: on Ctrl-C the program leaves
    at once instead of waiting for requests still running on remote workers.
    """
    items = list(items)
    results: list[Any] = [None] * len(items)
    done: queue.Queue[BaseException | None] = queue.Queue()
    gate = threading.Semaphore(max(1, limit))

    def work(index: int, item: T) -> None:
        try:
            results[index] = func(item)
            done.put(None)
        except BaseException as exc:  # handed to the caller's thread below
            done.put(exc)
        finally:
            gate.release()

    for index, item in enumerate(items):
        gate.acquire()
        threading.Thread(target=work, args=(index, item), daemon=True, name=f"partisim-{index}").start()
    for _ in items:
        error = done.get()
        if error is not None:
            raise error
    return results


def explain_task_error(worker_id: str, exc: BaseException) -> str:
    """One Spanish sentence for a failed task, naming the worker."""
    detail = str(exc).strip()
    if isinstance(exc, WorkerUnavailable):
        return f"el worker {worker_id} no responde ({detail})"
    if isinstance(exc, TaskTimedOut):
        return f"la tarea superó el tiempo límite en {worker_id} ({detail})"
    if isinstance(exc, TaskRejected):
        return f"el worker {worker_id} rechazó la tarea: {detail}"
    if isinstance(exc, PartisimError):
        return f"fallo en {worker_id}: {detail or 'error sin descripción'}"
    return f"fallo inesperado en {worker_id}: {detail or 'error sin descripción'}"


def execute_on(
    url: str,
    engine: str,
    params: SimParams,
    *,
    timeout: float | None = None,
    threads: int | None = None,
    connect_timeout: float,
    token: str | None = None,
    ca_file: str | None = None,
) -> ExecuteResult:
    """Run one benchmark on one worker (one attempt) and return the worker's answer."""
    with WorkerClient(url, timeout=connect_timeout, token=token, ca_file=ca_file) as client:
        return client.execute(
            ExecuteRequest(benchmark=engine, params=params.to_api(), timeout=timeout, threads=threads)
        )


def execute_any(
    url: str,
    engine: str,
    params: SimParams,
    *,
    timeout: float | None = None,
    threads: int | None = None,
    connect_timeout: float,
    token: str | None = None,
    ca_file: str | None = None,
) -> TaskResult:
    """`execute_on` for any worker of the family: its /status says first whether it is
    partisim; one that is not (the users' original worker) gets the same request with
    the engines under their scripts' names and only the parameters it reads, and its
    answer comes back as reported, not verifiable. What it cannot do as asked -- numpy,
    which it would silently run as Python, or a parameter or ``threads`` it would
    ignore -- is refused before anything is sent (`fleet.legacy`)."""
    request = ExecuteRequest(benchmark=engine, params=params.to_api(), timeout=timeout, threads=threads)
    with WorkerClient(url, timeout=connect_timeout, token=token, ca_file=ca_file) as client:
        try:
            partisim = client.status().is_partisim
        except TaskRejected as exc:
            if exc.status_code == 401:
                raise
            partisim = False  # no /status of ours: a worker of another design
        if partisim:
            return client.execute(request)
        problem = legacy_problem(engine, request.params, threads)
        if problem is not None:
            raise TaskRejected(f"{url}: este worker no es partisim: {problem}", 422)
        return client.execute_foreign(legacy_request(request))


@dataclass
class EngineRun:
    """One engine on one worker: its result, or why it failed."""

    worker_id: str
    engine: str
    result: TaskResult | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.result is not None

    @property
    def verifiable(self) -> bool:
        """False for a result of a worker that is not partisim."""
        return not isinstance(self.result, ForeignResult)


@dataclass
class DemoRow:
    """Both engines on one worker, run one after the other so their times compare."""

    worker_id: str
    python: EngineRun
    cython: EngineRun

    @property
    def speedup(self) -> float | None:
        py, cy = run_seconds(self.python.result), run_seconds(self.cython.result)
        if py is None or cy is None or cy <= 0:
            return None
        return py / cy

    @property
    def checksums_match(self) -> bool | None:
        """None when a result cannot be checked (missing, or from a worker that is not
        partisim: no checksum)."""
        py, cy = self.python.result, self.cython.result
        if not isinstance(py, ExecuteResult) or not isinstance(cy, ExecuteResult):
            return None
        return py.checksum == cy.checksum and py.particle_collisions == cy.particle_collisions


def run_seconds(result: TaskResult | None) -> float | None:
    """A run's time: the simulation's own, or for a worker that does not report it (not
    partisim) the whole execution's."""
    if result is None:
        return None
    if isinstance(result, ForeignResult):
        return result.simulation_time if result.simulation_time is not None else result.execution_time
    return result.simulation_time
