"""What runs on a Dask worker for ``partisim serve --dask``: a batch of attempts (one Dask
task), and the probe of the version guard.

An attempt whose work is far below its deadline (`partisim.sim.cost.tiny`: a few
milliseconds of work against minutes of timeout) runs in the worker's own thread, like a
plain Dask task: handing it to a child process would cost more than the simulation.
Every other attempt runs the same engine code as an HTTP worker does, in a child process
that can be killed (`partisim.sim.isolated`): at the task's deadline, or as soon as the
Dask worker marks the task cancelled (serve cancelled it, or serve's client went away),
so the worker's thread is free again within a fraction of a second. Serve puts several
small attempts in one Dask task and each long one alone.

This module is what a Dask worker imports. It imports nothing of serve: only
`partisim.sim`, partisim's version, the standard library and (inside the functions)
`distributed`, which every Dask worker has.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from partisim import __version__
from partisim.errors import ParamsError, PartisimError
from partisim.sim import ENGINES, MODEL_VERSION, SimParams, SimResult, parse_params
from partisim.sim.isolated import prewarm, run_isolated

__all__ = [
    "AttemptSpec",
    "AttemptReport",
    "WorkerEnvironment",
    "environment",
    "run_batch",
    "expected",
]

#: states of a task on a Dask worker that mean "nobody wants this run any more"
_RELEASED = frozenset({"cancelled", "released", "forgotten"})


@dataclass(frozen=True)
class WorkerEnvironment:
    """What the version guard asks every Dask worker."""

    version: str
    model: int
    python: str
    engines: tuple[str, ...]


def expected() -> tuple[str, int]:
    """The (partisim version, model version) a worker must have to be used."""
    return __version__, MODEL_VERSION


def environment() -> WorkerEnvironment:
    """Run on each worker by the version guard (`Client.run`)."""
    from partisim.sim import get_engine

    try:
        from distributed import get_worker

        threads = int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        threads = 1
    prewarm(threads)  # this worker's first long attempts find their child processes ready
    engines = []
    for name in ENGINES:
        try:
            get_engine(name)
        except ImportError:
            continue
        engines.append(name)
    return WorkerEnvironment(__version__, MODEL_VERSION, sys.version.split()[0], tuple(engines))


@dataclass(frozen=True)
class AttemptSpec:
    """One attempt as serve hands it to Dask (plain values: it crosses the network)."""

    key: str
    benchmark: str
    params: dict[str, Any]
    timeout: float
    expects: tuple[str, int]
    #: the event topic serve listens on for reports (None: serve gathers the result)
    topic: str | None = None
    #: run in the worker's thread (see `inline`), not in a killable child
    inline: bool = False


AttemptStatus = Literal["success", "timeout", "cancelled", "invalid", "failed", "refused"]


@dataclass(frozen=True)
class AttemptReport:
    """What came back from the worker: the result, or why there is none (Spanish)."""

    worker: str
    status: AttemptStatus
    result: SimResult | None = None
    message: str = ""
    elapsed: float = 0.0

    def to_event(self, key: str) -> dict[str, Any]:
        """As plain values (Dask's events carry only msgpack types)."""
        result = asdict(self.result) if self.result is not None else None
        return {
            "key": key,
            "worker": self.worker,
            "status": self.status,
            "result": result,
            "message": self.message,
            "elapsed": self.elapsed,
        }

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> AttemptReport:
        result = SimResult(**data["result"]) if data.get("result") is not None else None
        return cls(
            str(data["worker"]), data["status"], result, str(data.get("message", "")), float(data.get("elapsed", 0.0))
        )


def _released(worker: Any, key: str) -> Callable[[], bool]:
    """True once the Dask worker no longer wants ``key`` run (cancelled, released)."""

    def check() -> bool:
        tasks = getattr(getattr(worker, "state", None), "tasks", None)
        if tasks is None:  # not a worker we know how to read: rely on the deadline
            return False
        ts = tasks.get(key)
        return ts is None or getattr(ts, "state", None) in _RELEASED

    return check


def run_batch(specs: list[AttemptSpec]) -> list[AttemptReport]:
    """The Dask task: its attempts one after another (in this thread or in a killable
    child each), then their reports to serve in one event too (cheaper for serve than
    gathering them). Once the Dask task is cancelled, what has not started is reported
    cancelled."""
    from distributed import get_worker

    worker = get_worker()
    key = _task_key(specs)
    stop = _released(worker, key) if key is not None else (lambda: False)
    reports = []
    for spec in specs:
        if stop():
            reports.append(AttemptReport(str(worker.address), "cancelled", message="la tarea se canceló"))
            continue
        reports.append(_attempt(spec, worker, stop))
    topic = specs[0].topic if specs else None
    if topic is not None:
        events = [r.to_event(s.key) for s, r in zip(specs, reports, strict=True)]
        worker.log_event(topic, {"batch": key, "reports": events})
    return reports


def _task_key(specs: list[AttemptSpec]) -> str | None:
    """The Dask key of the running task (its first attempt's key)."""
    try:
        from distributed import get_worker

        key = get_worker().get_current_task()
        return str(key) if key is not None else None
    except (ImportError, ValueError):
        return specs[0].key if specs else None


def _attempt(spec: AttemptSpec, worker: Any, stop: Callable[[], bool]) -> AttemptReport:
    address = str(worker.address)
    if spec.expects != expected():
        version, model = spec.expects
        mine = f"partisim {__version__} (modelo v{MODEL_VERSION})"
        return AttemptReport(
            address,
            "refused",
            message=f"el worker Dask {address} tiene {mine}; serve usa partisim {version} (modelo v{model})",
        )
    try:
        params = parse_params(spec.params)
    except ParamsError as exc:
        return AttemptReport(address, "invalid", message=exc.message)
    if spec.inline:  # serve's decision (`sim.cost.tiny`); the version guard means the same code
        return _in_thread(address, params, spec.benchmark)
    run = run_isolated(params, spec.benchmark, spec.timeout, key=spec.key, should_stop=stop)
    return AttemptReport(address, run.status, run.result, run.message, run.elapsed)


def _in_thread(address: str, params: SimParams, engine: str) -> AttemptReport:
    from partisim.sim import simulate

    start = time.perf_counter()
    try:
        result = simulate(params, engine)
    except PartisimError as exc:
        return AttemptReport(address, "invalid", message=exc.message, elapsed=time.perf_counter() - start)
    except Exception as exc:  # the run failed; the worker is still sound
        return AttemptReport(
            address, "failed", message=f"{type(exc).__name__}: {exc}", elapsed=time.perf_counter() - start
        )
    return AttemptReport(address, "success", result, elapsed=time.perf_counter() - start)
