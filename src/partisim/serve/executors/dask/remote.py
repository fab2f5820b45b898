"""What runs on a Dask worker for ``partisim serve --dask``: one attempt of one task, and
the probe of the version guard.

The attempt runs the same engine code as an HTTP worker does, in a child process that
can be killed (`partisim.sim.isolated`): at the task's deadline, or as soon as the Dask
worker marks the task cancelled (serve cancelled it, or serve's client went away), so
the worker's thread is free again within a fraction of a second.

This module is what a Dask worker imports. It imports nothing of serve: only
`partisim.sim`, partisim's version, the standard library and (inside the functions)
`distributed`, which every Dask worker has.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from partisim import __version__
from partisim.errors import ParamsError
from partisim.sim import ENGINES, MODEL_VERSION, SimResult, parse_params
from partisim.sim.isolated import run_isolated

__all__ = ["AttemptSpec", "AttemptReport", "WorkerEnvironment", "environment", "run_attempt", "expected"]

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


def run_attempt(spec: AttemptSpec) -> AttemptReport:
    """The Dask task: check the version, run the simulation in a killable child, and
    send the report to serve as an event too (cheaper for serve than gathering it)."""
    from distributed import get_worker

    worker = get_worker()
    report = _attempt(spec, worker)
    if spec.topic is not None:
        worker.log_event(spec.topic, report.to_event(spec.key))
    return report


def _attempt(spec: AttemptSpec, worker: Any) -> AttemptReport:
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
    run = run_isolated(params, spec.benchmark, spec.timeout, key=spec.key, should_stop=_released(worker, spec.key))
    return AttemptReport(address, run.status, run.result, run.message, run.elapsed)
